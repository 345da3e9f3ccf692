-- The GO head as a model of kind 'predictor', inheriting the snapshot of the model it reads.
INSERT OR REPLACE INTO ml.models (model_id, kind, path, config, metrics, snapshot, snapshot_hash)
SELECT $predictor_id, 'predictor', $path, $config, $metrics,
       (SELECT snapshot FROM ml.models WHERE model_id = $model_id),
       (SELECT snapshot_hash FROM ml.models WHERE model_id = $model_id);
