-- The GO terms each predictor of each model predicts best (AUROC on the test split), among terms
-- with at least $min_test_positives positive test contrasts (with fewer, AUROC = AUPRC = 1 comes
-- by luck); $per_predictor per predictor, the model's own latent head first. The label-frequency
-- prior scores every contrast of a term alike (AUROC 0.5), so it has no best terms.
SELECT m.model_id, m.predictor, m.go_id, t.name, m.n_pos_train, m.n_pos_test, m.auroc, m.auprc
FROM ml.go_metrics m
LEFT JOIN core.go_terms t USING (go_id)
WHERE m.go_id NOT IN ('macro', 'micro')
  AND m.predictor <> 'prior'
  AND m.auroc IS NOT NULL
  AND m.n_pos_test >= $min_test_positives
QUALIFY row_number() OVER (
    PARTITION BY m.model_id, m.predictor ORDER BY m.auroc DESC, m.go_id
) <= $per_predictor
ORDER BY m.model_id, m.predictor <> 'latent_head', m.predictor, m.auroc DESC, m.go_id;
