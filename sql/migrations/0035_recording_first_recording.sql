-- 0035: an account's first recording stored smaller: blobs as zstd with a dictionary, and
-- rrweb's vocabulary for what an account stores before it has a dictionary of its own.
--
-- Measured on the demo site's first recording of an account (docs/DECISIONS.md, "An
-- account's first recording"): its blobs (0028, gzip each) were a quarter of what it
-- stored, its dictionary (0030) stored its segment's text a second time. From this
-- migration on (hindsight.recording_codec, hindsight.recording_blobs):
--   * a blob is one zstd frame compressed with the dictionary of the segment that stored it
--     (`dictionary`, its SHA-256; NULL: gzip, a blob stored before 0035, read as before);
--   * the segment that makes the account's dictionary is compressed with it, and the
--     dictionary is made of its whole text, its blobs first (up to 64 KiB): the page's
--     markup and stylesheets, which the account's next pages share;
--   * before an account has a dictionary, its segments and blobs name rrweb's vocabulary
--     (hindsight.recording_vocabulary: JSON keys, HTML and CSS names, no data of any
--     account), by its SHA-256. It is shipped with the code, never stored here: no row of
--     recording_dictionaries has its hash, and nothing reclaims it.
--
-- A blob keeps its dictionary: a dictionary is reclaimed only when no segment and no blob
-- names it (lifecycle/retention.py; the same lock-then-check protocol). Erasing the session
-- a dictionary was made of re-compresses the blobs that used it with the vocabulary, as it
-- does the other sessions' segments (queries/erasure.py); retention does the same for the
-- blobs whose dictionary's source session has expired (a stylesheet's blob can outlive the
-- session whose text compressed it by months), so that no expired session's text stays.
--
-- For a DBA:
--   -- blobs per format: gzip (before 0035), zstd with an account's dictionary or the vocabulary:
--   SELECT dictionary IS NULL AS gzip, count(*), pg_size_pretty(sum(gzip_bytes))
--   FROM recording_blobs GROUP BY 1;

ALTER TABLE recording_blobs ADD COLUMN dictionary bytea;
-- Which blobs use a dictionary (reclaim, erasure). Only blobs with one are indexed.
CREATE INDEX recording_blobs_dictionary_idx ON recording_blobs (account_id, dictionary)
    WHERE dictionary IS NOT NULL;
