-- 0028: large repeated parts of DOM recordings, stored once per account (content-addressed).
--
-- rrweb's full snapshot (one per page load) inlines every stylesheet of the page as a
-- string (`_cssText`, the text of <style> elements), and so does a mutation that adds a
-- <style>; and a page loaded again gives the same snapshot, markup and node ids included.
-- On ingest (hindsight.recording_blobs) every JSON string literal of a segment of at least
-- 1 KiB (MIN_BYTES), and in a full snapshot's node tree the largest subtrees (JSON objects)
-- of 1 to 16 KiB (MAX_TREE_BYTES), are cut out of the segment's JSON text and stored here
-- once per (account, SHA-256 of their bytes): the segment keeps the rest of its text
-- (`recording_segments.data`, gzip) and, in two arrays, where each cut goes back
-- (`blob_offsets`: byte offsets into the rest, ascending) and which it is (`blobs`: the
-- SHA-256 of each). Reading a segment splices the cuts back at their offsets: the JSON
-- returned is byte for byte the JSON the browser sent, whatever it contains (no marker
-- inside the events, so nothing in a recorded page can be mistaken for a reference). A
-- read checks that every blob is there, that its bytes hash to its key and that the result
-- has the segment's `json_bytes`. A segment with nothing to cut is stored as before (both
-- arrays NULL, `data` the browser's gzip).
--
-- Per account, never shared between tenants: a blob's key includes the account, an
-- erasure or an account's deletion never depends on another tenant's data, and nobody
-- can learn whether another account's pages hold a given stylesheet.
--
-- Reclaim: a blob goes when no segment references it any more.
--   * erasure (queries/erasure.py) deletes the blobs the erased segments referenced that
--     no other segment references, in its transaction;
--   * retention (lifecycle/retention.py, after dropping chunks and rows of segments)
--     deletes the blobs no segment references;
--   * deleting an account deletes its blobs (the foreign key cascades).
-- Both first lock the candidate rows (FOR UPDATE), then check for references in a new
-- statement. A write that references a blob upserts it in the statement that stores the
-- segment (ON CONFLICT DO UPDATE locks the row even when nothing changes), so a reclaim
-- either waits for that write and then sees its segment, or deletes first and the write
-- inserts the blob again (it always carries the blob's bytes).
-- `first_session_at`/`last_session_at` bound the session starts (recording_segments'
-- partitioning column) of the segments that may reference the blob: the reference
-- check reads only the chunks in between.
--
-- For a DBA:
--   -- blobs and bytes per account:
--   SELECT account_id, count(*) AS blobs, pg_size_pretty(sum(gzip_bytes)) AS stored,
--          pg_size_pretty(sum(json_bytes)) AS json
--   FROM recording_blobs GROUP BY 1 ORDER BY sum(gzip_bytes) DESC;
--   -- the segments that reference a blob:
--   SELECT session_id, segment FROM recording_segments
--   WHERE blobs @> ARRAY['\x<sha256 hex>'::bytea];
--   -- blobs no segment references (retention deletes them on its next run):
--   SELECT b.account_id, encode(b.sha256, 'hex') FROM recording_blobs b
--   WHERE NOT EXISTS (SELECT 1 FROM recording_segments r WHERE r.account_id = b.account_id
--                     AND r.blobs @> ARRAY[b.sha256]);

CREATE TABLE recording_blobs (
    account_id        uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    sha256            bytea NOT NULL CHECK (octet_length(sha256) = 32),  -- of the cut bytes
    data              bytea NOT NULL,          -- the cut bytes (a literal, quotes included, or an object), gzip
    gzip_bytes        integer NOT NULL,        -- = octet_length(data)
    json_bytes        integer NOT NULL,        -- their size
    first_session_at  timestamptz NOT NULL,    -- earliest / latest session start of a
    last_session_at   timestamptz NOT NULL,    -- segment that referenced it
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, sha256)
);
-- gzip does not compress again: out of line as it is.
ALTER TABLE recording_blobs ALTER COLUMN data SET STORAGE EXTERNAL;

-- NULL (both) for a segment without blobs: its `data` is the whole JSON, as before.
ALTER TABLE recording_segments ADD COLUMN blobs bytea[];
ALTER TABLE recording_segments ADD COLUMN blob_offsets integer[];
ALTER TABLE recording_segments ADD CONSTRAINT recording_segments_blob_refs
    CHECK ((blobs IS NULL) = (blob_offsets IS NULL)
           AND coalesce(cardinality(blobs) = cardinality(blob_offsets), true));
-- Which segments reference a blob (reclaim). Only segments with blobs are indexed.
CREATE INDEX recording_segments_blobs_idx ON recording_segments USING gin (blobs)
    WHERE blobs IS NOT NULL;
