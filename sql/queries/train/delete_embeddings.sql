-- A model's earlier latent codes, replaced when the model is (re)trained.
DELETE FROM ml.embeddings WHERE model_id = $model_id AND method = 'latent';
