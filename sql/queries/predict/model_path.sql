SELECT path FROM ml.models WHERE model_id = $model_id;
