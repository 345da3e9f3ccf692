-- The z-score (imported signatures) of one batch of contrasts as (row in the batch, gene_index,
-- value); a missing gene has no row (as export/log2fc_rows).
WITH wanted AS (
    SELECT unnest($contrast_ids) AS contrast_id, unnest(range(len($contrast_ids))) AS row
)
SELECT w.row::INTEGER AS row, d.gene_index, d.z::FLOAT AS value
FROM core.de_results AS d
JOIN wanted AS w USING (contrast_id);
