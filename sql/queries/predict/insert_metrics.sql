-- new_metrics: an Arrow table registered by degae_tools.predict.
INSERT INTO ml.go_metrics (model_id, predictor, go_id, n_pos_train, n_pos_test, auroc, auprc)
SELECT model_id, predictor, go_id, n_pos_train, n_pos_test, auroc, auprc FROM new_metrics;
