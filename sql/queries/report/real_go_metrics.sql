-- Macro AUROC and AUPRC of every GO predictor fitted on a model of an imported collection, with
-- the model's kind and latent size and the number of terms scored.
WITH latent AS (
    SELECT model_id, max(latent_dim) AS latent_dim
    FROM ml.reconstruction
    WHERE method = 'autoencoder'
    GROUP BY model_id
),
scored AS (
    SELECT model_id, predictor, count(*) AS n_terms
    FROM ml.go_metrics
    WHERE go_id NOT IN ('macro', 'micro') AND auprc IS NOT NULL
    GROUP BY model_id, predictor
)
SELECT
    json_extract_string(m.config, '$.collection') AS collection,
    m.kind,
    g.model_id,
    l.latent_dim,
    g.predictor,
    g.auroc,
    g.auprc,
    coalesce(s.n_terms, 0) AS n_terms
FROM ml.go_metrics AS g
JOIN ml.models AS m USING (model_id)
JOIN latent AS l USING (model_id)
LEFT JOIN scored AS s USING (model_id, predictor)
WHERE g.go_id = 'macro'
    AND coalesce(json_extract_string(m.config, '$.collection'), 'compendium') <> 'compendium'
ORDER BY collection, l.latent_dim, m.kind, g.predictor, g.model_id;
