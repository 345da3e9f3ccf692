-- Genes with a log2FC in every finished contrast: the study dropped genes missing in any series.
SELECT d.gene_index
FROM core.de_results AS d
JOIN core.de_runs AS r ON r.contrast_id = d.contrast_id AND r.status = 'done'
WHERE d.log_fc IS NOT NULL AND NOT isnan(d.log_fc)
GROUP BY d.gene_index
HAVING count(DISTINCT d.contrast_id) = (SELECT count(*) FROM core.de_runs WHERE status = 'done')
ORDER BY d.gene_index;
