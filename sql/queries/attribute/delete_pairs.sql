DELETE FROM ml.attribution_pairs WHERE model_id = ?;
