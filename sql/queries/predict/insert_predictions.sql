-- new_predictions: an Arrow table registered by degae_tools.predict.
INSERT INTO ml.go_predictions (model_id, predictor, contrast_id, go_id, score, label)
SELECT model_id, predictor, contrast_id, go_id, score, label FROM new_predictions;
