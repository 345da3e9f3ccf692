-- A model's earlier ml.history rows, replaced when the model is (re)trained.
DELETE FROM ml.history WHERE model_id = $model_id;
