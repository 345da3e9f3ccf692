-- A GO term named by ID or by exact (case-insensitive) name ($term), known to the ontology or to
-- the enrichment results.
SELECT go_id, name FROM core.go_terms WHERE go_id = $term OR lower(name) = lower($term)
UNION ALL
SELECT DISTINCT go_id, NULL FROM core.go_enrichment WHERE go_id = $term
LIMIT 1;
