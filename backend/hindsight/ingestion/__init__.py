"""Ingestion: the one way in. Every write from a site goes through these steps, each a
function, and an endpoint is a few lines on top of them (see resources/track.py):

1. decode    `decode.json_object`: the body (its size checked before it was read, by
             hindsight.middleware) to a JSON object its schema accepts (hindsight.schemas);
             a recording segment: `segments.decode` (gzip and JSON, bounded);
2. validate  `window.check_window` / `check_each_in_window`: timestamps inside the write window;
3. authorize `authorize.authorize`: the one decision (hindsight.queries.writers), or the
             refusal it explains (401/403/404);
4. store     `batches.store`, `sessions.create`, `screenshots.store`, `recordings.store`:
             once, however often sent, in one transaction (a new batch: authorized and
             stored by one statement);
5. count     after the commit, on the statistics stacks (hindsight.stacks): events and
             sessions (screenshots and recordings are not usage).

`tokens` issues the statistics tokens a write needs, for the site flow and the seed's API.
Who sends a write (its token, the page's host) is read from the request by
hindsight.resources.http.sender; nothing here imports Falcon (refusals are
hindsight.errors' one error shape).
"""
