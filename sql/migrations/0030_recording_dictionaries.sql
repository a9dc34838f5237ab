-- 0030: DOM recording segments stored as zstd, with a dictionary of the account's own text.
--
-- A segment is compressed alone (2-5 KB once compressed), so gzip started cold for each
-- one and never saw what the same site's earlier segments said (the same rrweb keys, node
-- ids, class names, mutation shapes). From this migration on, a new segment's `data` (the
-- rest of its JSON once recording_blobs cut out its blobs, 0028) is one zstd frame (level 9,
-- content size and checksum in it) compressed with the account's newest *dictionary*: the
-- last 32 KiB of the text of one of the account's earlier segments (a zstd raw-content
-- dictionary; hindsight.recording_codec). `dictionary` names it by the SHA-256 of its bytes;
-- NULL: zstd without a dictionary, or gzip for rows stored before 0030 (told apart by their
-- magic numbers; those rows are read as before). Measured: the segments' own bytes 0.25-0.35
-- of plain gzip instead of 0.49-0.58 (docs/DECISIONS.md, "Recording storage: zstd with a
-- per-account dictionary").
--
-- Made at write time, bounded: an upload whose account has no dictionary younger than a day
-- (recording_codec.ROTATE) and whose text (blobs cut out) has at least 8 KiB makes one of
-- that text, in the statement that stores its segment (that segment itself is compressed
-- with the older dictionary, or none). Uploads of the account then use the newest.
--
-- Per account, never shared between tenants: the key is (account_id, sha256), and a read
-- looks the dictionary up through the segment's own account, so no segment can use another
-- account's. A read checks that the dictionary's bytes hash to the key and zstd checks the
-- frame's checksum: a missing or altered dictionary is a refused read, never wrong events.
--
-- A dictionary is an excerpt of one session's recording (`source_session_id`; masked as
-- every recording is). Kept while a segment uses it:
--   * erasure (queries/erasure.py): the dictionaries made from an erased session are
--     deleted after the segments of other sessions that used them are re-compressed without
--     them, in the erasure's transaction; the dictionaries only the erased segments used go;
--   * retention (lifecycle/retention.py) deletes dictionaries no segment uses that are not
--     their account's newest (or whose source session is gone);
--   * deleting an account deletes its dictionaries (the foreign key cascades).
-- Reclaim and upload follow the blobs' protocol (0028): the upload locks the dictionary it
-- names (FOR KEY SHARE) in the statement that stores its segment, and stores nothing when
-- it is gone (the upload then compresses again without it); a reclaim locks its candidates
-- FOR UPDATE, then checks for references in a new statement.
--
-- For a DBA:
--   -- dictionaries per account, and how many segments use each:
--   SELECT d.account_id, encode(d.sha256, 'hex'), d.created_at, d.stored_bytes,
--          (SELECT count(*) FROM recording_segments s
--           WHERE s.account_id = d.account_id AND s.dictionary = d.sha256) AS segments
--   FROM recording_dictionaries d ORDER BY d.account_id, d.created_at;
--   -- stored bytes by format (gzip before 0030, zstd after):
--   SELECT substring(data FROM 1 FOR 2) = '\x1f8b'::bytea AS gzip, dictionary IS NOT NULL AS with_dictionary,
--          count(*), pg_size_pretty(sum(gzip_bytes)) FROM recording_segments GROUP BY 1, 2;

CREATE TABLE recording_dictionaries (
    account_id         uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    sha256             bytea NOT NULL CHECK (octet_length(sha256) = 32),  -- of the dictionary's bytes
    data               bytea NOT NULL,         -- the dictionary's bytes, zstd-compressed (level 19)
    stored_bytes       integer NOT NULL,       -- = octet_length(data)
    dictionary_bytes   integer NOT NULL,       -- its size uncompressed
    source_session_id  uuid NOT NULL,          -- the session whose text it is (erasure)
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, sha256)
);
-- The account's newest (the uploads' first statement reads it).
CREATE INDEX recording_dictionaries_newest_idx ON recording_dictionaries (account_id, created_at DESC);
CREATE INDEX recording_dictionaries_source_idx ON recording_dictionaries (source_session_id);
-- zstd does not compress again.
ALTER TABLE recording_dictionaries ALTER COLUMN data SET STORAGE EXTERNAL;

-- NULL: gzip (before 0030) or zstd without a dictionary.
ALTER TABLE recording_segments ADD COLUMN dictionary bytea;
-- Which segments use a dictionary (reclaim, erasure). Only segments with one are indexed.
CREATE INDEX recording_segments_dictionary_idx ON recording_segments (account_id, dictionary)
    WHERE dictionary IS NOT NULL;
