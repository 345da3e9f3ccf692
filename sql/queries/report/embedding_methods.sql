-- Projections stored for one model or reduce run ($model_id), except the raw latent code.
SELECT method, count(*) AS n_contrasts
FROM ml.embeddings
WHERE model_id = $model_id AND method <> 'latent'
GROUP BY method
ORDER BY method;
