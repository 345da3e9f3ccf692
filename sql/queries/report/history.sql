-- Loss curves of the newest models that have them ($n_models: how many models).
WITH recent AS (
    SELECT h.model_id, max(m.created_at) AS created_at
    FROM ml.history h
    LEFT JOIN ml.models m USING (model_id)
    GROUP BY h.model_id
    ORDER BY created_at DESC NULLS LAST, h.model_id
    LIMIT $n_models
)
SELECT h.model_id, h.epoch, h.loss, h.val_loss, h.learning_rate
FROM ml.history h
JOIN recent USING (model_id)
ORDER BY recent.created_at DESC NULLS LAST, h.model_id, h.epoch;
