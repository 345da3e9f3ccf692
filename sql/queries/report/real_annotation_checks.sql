-- The annotation check of attributions on models of imported collections: the share of a
-- pair's top-k genes annotated to its term or a descendant, per method (ig, abs_z, ...).
WITH latent AS (
    SELECT model_id, max(latent_dim) AS latent_dim
    FROM ml.reconstruction
    WHERE method = 'autoencoder'
    GROUP BY model_id
)
SELECT
    json_extract_string(m.config, '$.collection') AS collection,
    m.kind,
    v.model_id,
    l.latent_dim,
    v.check_name,
    v.method,
    v.value,
    v.n
FROM ml.validation AS v
JOIN ml.models AS m USING (model_id)
LEFT JOIN latent AS l USING (model_id)
WHERE v.check_name LIKE 'annotated@%'
    AND coalesce(json_extract_string(m.config, '$.collection'), 'compendium') <> 'compendium'
ORDER BY collection, l.latent_dim, m.kind, v.model_id, v.method;
