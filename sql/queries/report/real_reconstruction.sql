-- Held-out (test) reconstruction R² of the models of imported collections (core.collections),
-- with each model's collection and kind, for the report's "Real signatures" section.
SELECT
    json_extract_string(m.config, '$.collection') AS collection,
    m.kind,
    r.model_id,
    r.method,
    r.latent_dim,
    r.r2
FROM ml.reconstruction AS r
JOIN ml.models AS m USING (model_id)
WHERE r.split = 'test'
    AND r.r2 IS NOT NULL
    AND coalesce(json_extract_string(m.config, '$.collection'), 'compendium') <> 'compendium'
ORDER BY collection, r.latent_dim, m.kind, r.method, r.model_id;
