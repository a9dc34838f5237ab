"""The API's endpoints (Falcon resources; app.py adds their routes). Each reads its
request (http.py), calls hindsight.ingestion for a write or hindsight.queries for a read,
and answers. Writes: track.py, sessions.py (POST), seed_events.py, recording.py; reads:
sessions.py, screenshots.py, stats.py, recording.py; the site flow: site.py, seed_tokens.py;
and health.py, seed_health.py, tracker.py.
"""
