-- GO prediction summaries (macro and micro averages) per model and predictor, with the number
-- of terms evaluated.
WITH terms AS (
    SELECT model_id, predictor, count(*) AS n_terms
    FROM ml.go_metrics
    WHERE go_id NOT IN ('macro', 'micro')
    GROUP BY ALL
)
SELECT m.model_id, m.predictor, m.go_id AS average, m.auroc, m.auprc, t.n_terms
FROM ml.go_metrics m
LEFT JOIN terms t USING (model_id, predictor)
WHERE m.go_id IN ('macro', 'micro')
ORDER BY m.model_id, m.go_id, m.auroc DESC NULLS LAST;
