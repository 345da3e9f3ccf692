-- The GO head as a model of kind 'predictor', inheriting the snapshot of the model it reads.
-- Parameters: predictor_id, path, config, metrics, base model_id (twice).
INSERT OR REPLACE INTO ml.models (model_id, kind, path, config, metrics, snapshot, snapshot_hash)
SELECT ?, 'predictor', ?, ?, ?,
       (SELECT snapshot FROM ml.models WHERE model_id = ?),
       (SELECT snapshot_hash FROM ml.models WHERE model_id = ?);
