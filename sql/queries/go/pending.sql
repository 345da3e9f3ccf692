-- Contrasts with finished DE results whose GO enrichment is missing or was computed from other
-- inputs, with the key their values are stored under in core.de_values. The inputs hash covers the DE fit (its own inputs hash, or when it was imported), every
-- loaded ontology, annotation, gene and cross-reference file, and the enrichment settings (JSON,
-- the one parameter): a new go-basic.obo, new annotations or another `enrich --n-randsets` all
-- redo the contrast. Imported enrichment (source gofuncr_export) is never recomputed.
WITH go_sources AS (
    SELECT coalesce(string_agg(kind || ':' || sha256, ',' ORDER BY kind, sha256), '') AS shas
    FROM raw.source_files
    WHERE status = 'loaded' AND kind IN ('ontology', 'annotations', 'gene_xrefs', 'gene_info')
),
current AS (
    SELECT d.contrast_id,
           md5(coalesce(d.inputs_hash, d.source || '@' || d.finished_at::VARCHAR) || '|'
               || s.shas || '|' || $settings) AS inputs_hash
    FROM core.de_runs AS d, go_sources AS s
    WHERE d.status = 'done'
)
SELECT c.contrast_id, c.inputs_hash, k.contrast_key
FROM current AS c
LEFT JOIN core.go_runs AS g USING (contrast_id)
LEFT JOIN core.contrast_keys AS k USING (contrast_id)
WHERE g.contrast_id IS NULL
   OR (g.source = 'degae' AND g.inputs_hash IS DISTINCT FROM c.inputs_hash)
ORDER BY c.contrast_id;
