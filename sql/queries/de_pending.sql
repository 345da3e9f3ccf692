-- Included contrasts without a DE result for their current runs (new, or runs changed since),
-- with where their series' counts are and the hash that identifies their inputs.
WITH current AS (
    SELECT c.*, md5(array_to_string(c.runs_a, ',') || '|' || array_to_string(c.runs_b, ','))
               AS inputs_hash
    FROM core.included_contrasts c
)
SELECT c.contrast_id, c.gse, c.group_a, c.group_b, c.runs_a, c.runs_b, c.inputs_hash,
       f.parquet_path
FROM current c
JOIN raw.count_files f USING (gse)
LEFT JOIN core.de_runs d USING (contrast_id)
WHERE d.contrast_id IS NULL
   OR (d.source = 'degae' AND d.inputs_hash IS DISTINCT FROM c.inputs_hash)
ORDER BY c.gse, c.contrast_id;
