-- One finished (trial, fold) of a search: its architecture and held-out loss.
INSERT OR REPLACE INTO ml.trials (search_id, trial, fold, neurons, layers, kind, val_loss, seconds)
VALUES ($search_id, $trial, $fold, $neurons, $layers, $kind, $val_loss, $seconds);
