DELETE FROM ml.go_predictions WHERE model_id = ?;
