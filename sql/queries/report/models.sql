-- Every trained model, newest first.
SELECT model_id, kind, study_mode, created_at, config, metrics
FROM ml.models
ORDER BY created_at DESC, model_id;
