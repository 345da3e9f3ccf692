-- The first two coordinates of every contrast under one model or reduce run ($model_id)
-- and method ($method).
SELECT contrast_id, coords[1] AS x, coords[2] AS y
FROM ml.embeddings
WHERE model_id = $model_id AND method = $method
ORDER BY contrast_id;
