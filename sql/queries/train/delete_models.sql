-- A model's earlier ml.models rows, replaced when the model is (re)trained.
DELETE FROM ml.models WHERE model_id = $model_id;
