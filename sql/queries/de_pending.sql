-- Included contrasts without a DE result yet, with where their series' counts are.
SELECT c.contrast_id, c.gse, c.group_a, c.group_b, c.runs_a, c.runs_b, f.parquet_path
FROM core.included_contrasts c
JOIN raw.count_files f USING (gse)
WHERE c.contrast_id NOT IN (SELECT contrast_id FROM core.de_runs)
ORDER BY c.gse, c.contrast_id;
