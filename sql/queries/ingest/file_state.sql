-- Whether a file with this content was loaded before (a rejected file is tried again), and
-- whether its path has open rejections that its next load settles.
SELECT (SELECT count(*) > 0 FROM raw.source_files
        WHERE kind = $kind AND sha256 = $sha256 AND status = 'loaded') AS loaded,
       (SELECT count(*) > 0 FROM raw.rejected
        WHERE source = $path AND stage = 'ingest' AND resolved_at IS NULL) AS has_open_rejections;
