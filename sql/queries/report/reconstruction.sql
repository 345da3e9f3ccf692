-- Held-out reconstruction of each model beside PCA of the same latent size.
SELECT model_id, split, method, latent_dim, mse, r2
FROM ml.reconstruction
ORDER BY model_id, split, method;
