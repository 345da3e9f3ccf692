-- Whether a file with this content was imported (into this collection) before.
SELECT count(*) > 0
FROM raw.source_files
WHERE kind = $kind AND sha256 = $sha AND status = 'loaded';
