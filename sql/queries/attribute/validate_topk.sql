-- The stored top-k genes of every attributed pair, best first. Parameters: $model_id, $k.
SELECT contrast_id, go_id, list(gene_index ORDER BY rank) AS genes
FROM ml.gene_attributions
WHERE model_id = $model_id AND rank <= $k
GROUP BY contrast_id, go_id;
