-- Coordinates from the registered Arrow table `embedding_rows`.
INSERT INTO ml.embeddings (model_id, method, contrast_id, split, coords)
SELECT model_id, method, contrast_id, split, coords FROM embedding_rows;
