-- Included contrasts without a DE result for their current inputs, with where their series'
-- counts are. The inputs hash covers the runs, the content of the count file and the DE
-- settings (the one parameter, as JSON): new runs, re-downloaded counts or another
-- `de --input/--voom/--prior-count` all refit the contrast.
WITH count_file_sha AS (
    SELECT path, arg_max(sha256, loaded_at) AS sha256
    FROM raw.source_files
    WHERE kind = 'counts' AND status = 'loaded'
    GROUP BY path
),
current AS (
    SELECT c.*, f.parquet_path,
           md5(array_to_string(c.runs_a, ',') || '|' || array_to_string(c.runs_b, ',') || '|'
               || coalesce(s.sha256, '') || '|' || $settings) AS inputs_hash
    FROM core.included_contrasts c
    JOIN raw.count_files f USING (gse)
    LEFT JOIN count_file_sha s ON s.path = f.source_file
)
SELECT c.contrast_id, c.gse, c.group_a, c.group_b, c.runs_a, c.runs_b, c.inputs_hash,
       c.parquet_path
FROM current c
LEFT JOIN core.de_runs d USING (contrast_id)
WHERE d.contrast_id IS NULL
   OR (d.source = 'degae' AND d.inputs_hash IS DISTINCT FROM c.inputs_hash)
ORDER BY c.gse, c.contrast_id;
