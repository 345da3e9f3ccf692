-- A model's earlier ml.reconstruction rows, replaced when the model is (re)trained.
DELETE FROM ml.reconstruction WHERE model_id = $model_id;
