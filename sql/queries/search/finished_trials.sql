-- The finished (trial, fold) runs of a search, so that a rerun skips them.
SELECT search_id, trial, fold, neurons, layers, kind, val_loss, seconds
FROM ml.trials
WHERE search_id = $search_id
ORDER BY trial, fold;
