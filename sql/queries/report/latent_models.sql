-- Models whose latent code has a 2-D projection (latent_pca, latent_tsne, ...), newest
-- first ($n_models: how many).
SELECT DISTINCT e.model_id, m.created_at
FROM ml.embeddings e
LEFT JOIN ml.models m USING (model_id)
WHERE e.method LIKE 'latent\_%' ESCAPE '\'
ORDER BY m.created_at DESC NULLS LAST, e.model_id
LIMIT $n_models;
