-- Held-out reconstruction of the autoencoder and of PCA at the same latent size.
INSERT INTO ml.reconstruction (model_id, method, split, latent_dim, mse, r2)
SELECT model_id, method, split, latent_dim, mse, r2 FROM reconstruction_rows;
