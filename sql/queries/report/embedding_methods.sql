-- Projections stored for one model or reduce run ($1), except the raw latent code.
SELECT method, count(*) AS n_contrasts
FROM ml.embeddings
WHERE model_id = $1 AND method <> 'latent'
GROUP BY method
ORDER BY method;
