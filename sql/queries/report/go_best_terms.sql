-- The GO terms best predicted (AUROC) by each model's best predictor (highest macro AUROC),
-- with names ($1: terms per model).
WITH best_predictor AS (
    SELECT model_id, predictor
    FROM ml.go_metrics
    WHERE go_id = 'macro' AND auroc IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY model_id ORDER BY auroc DESC, predictor) = 1
)
SELECT m.model_id, m.predictor, m.go_id, t.name, m.n_pos_train, m.n_pos_test, m.auroc, m.auprc
FROM ml.go_metrics m
JOIN best_predictor USING (model_id, predictor)
LEFT JOIN core.go_terms t USING (go_id)
WHERE m.go_id NOT IN ('macro', 'micro') AND m.auroc IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY m.model_id ORDER BY m.auroc DESC, m.go_id) <= $1
ORDER BY m.model_id, m.auroc DESC;
