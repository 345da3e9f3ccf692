-- A GO term named by ID or by exact (case-insensitive) name ($1), known to the ontology or to
-- the enrichment results.
SELECT go_id, name FROM core.go_terms WHERE go_id = $1 OR lower(name) = lower($1)
UNION ALL
SELECT DISTINCT go_id, NULL FROM core.go_enrichment WHERE go_id = $1
LIMIT 1;
