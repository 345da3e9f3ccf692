-- The k of each model's attributions: ml.gene_attributions keeps the k most attributed genes of
-- every (contrast, term) pair, ranked 1..k.
SELECT model_id, max(rank) AS top_k
FROM ml.gene_attributions
GROUP BY model_id;
