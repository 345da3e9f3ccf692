-- One trained autoencoder: its config, the warehouse snapshot it saw and its metrics.
INSERT INTO ml.models (model_id, kind, study_mode, path, config, snapshot, snapshot_hash, metrics)
VALUES ($model_id, $kind, $study_mode, $path, $config, $snapshot, $snapshot_hash, $metrics);
