-- The newest model that has a latent code in ml.embeddings.
SELECT e.model_id
FROM ml.embeddings e
LEFT JOIN ml.models m USING (model_id)
WHERE e.method = 'latent'
GROUP BY e.model_id, m.created_at
ORDER BY m.created_at DESC NULLS LAST, e.model_id DESC
LIMIT 1;
