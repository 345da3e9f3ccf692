-- The best architectures of each search by mean held-out loss over folds (five per search).
WITH architectures AS (
    SELECT search_id, neurons, layers, kind, avg(val_loss) AS mean_val_loss, count(*) AS n_folds
    FROM ml.trials
    GROUP BY search_id, neurons, layers, kind
)
SELECT search_id, neurons, layers, kind, mean_val_loss, n_folds
FROM architectures
QUALIFY row_number() OVER (PARTITION BY search_id ORDER BY mean_val_loss) <= 5
ORDER BY search_id, mean_val_loss;
