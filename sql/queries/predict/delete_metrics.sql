DELETE FROM ml.go_metrics WHERE model_id = ?;
