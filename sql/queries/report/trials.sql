-- Every fold of every hyperparameter-search trial.
SELECT search_id, trial, fold, neurons, layers, kind, val_loss, seconds
FROM ml.trials
ORDER BY search_id, trial, fold;
