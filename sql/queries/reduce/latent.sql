-- An autoencoder's latent code ($model_id), one row per contrast.
SELECT contrast_id, split, coords
FROM ml.embeddings
WHERE model_id = $model_id AND method = 'latent'
ORDER BY contrast_id;
