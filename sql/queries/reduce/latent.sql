-- An autoencoder's latent code ($1: model_id), one row per contrast.
SELECT contrast_id, split, coords
FROM ml.embeddings
WHERE model_id = $1 AND method = 'latent'
ORDER BY contrast_id;
