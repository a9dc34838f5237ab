"""The seed's statistics-server API (seed 000), kept for widget scripts built against it.

What it accepts is here (schemas.py) and how it maps onto sessions and events
(mapping.py); its endpoints are resources like any other and go through the same
ingestion pipeline (hindsight.ingestion) as /api/v1/sessions and /api/v1/track:

- resources/seed_tokens.py   POST /api/token, PUT|DELETE /api/token/{token} (internal key)
- resources/seed_events.py   POST /api/sessions/add, /api/pages/add, /api/events/add,
                             /api/referrers/add (statistics token)
- resources/seed_health.py   GET /api/health/stacks (hindsight.stacks' health, as the seed's JSON)
"""
