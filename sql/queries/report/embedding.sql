-- The first two coordinates of every contrast under one model/run ($1) and method ($2).
SELECT contrast_id, coords[1] AS x, coords[2] AS y
FROM ml.embeddings
WHERE model_id = $1 AND method = $2
ORDER BY contrast_id;
