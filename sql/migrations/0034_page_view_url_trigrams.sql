-- 0034: the sessions list's "page URL contains" finds its page views by trigrams.
--
-- The filter keeps a session whose entry page or any page viewed contains the text
-- (queries/sessions.py). Its page-view half read every page view of the account in the
-- range (from a day before it) and tested each URL: 450 ms for 30 days at 10 M events
-- (apache edition, docs/BENCHMARKS.md). A trigram index on the page views' URLs answers
-- `page_url LIKE '%text%'` from the index (pg_trgm, part of PostgreSQL's contrib, a trusted
-- extension: the database owner may create it): 57 ms for the same query. Partial (page
-- views only, about an eighth of the events), so other events' inserts do not pay for it.
-- A text that yields no trigram (`/`, `ab`) is not worth the index: the planner's estimate
-- for pg_trgm says so and it tests the rows as before. On the timescale edition compressed
-- chunks carry no such index: a range over them reads their page views as before.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS events_page_view_url_trgm_idx ON events USING gin (page_url gin_trgm_ops)
    WHERE event_type = 'page_view';
