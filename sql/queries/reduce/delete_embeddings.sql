-- Remove one method's coordinates of one model or reduce run before they are written again.
DELETE FROM ml.embeddings WHERE model_id = $1 AND method = $2;
