-- Per contrast, its enriched term (FWER_over < core.go_fwer(), the study's threshold) that is enriched in
-- the most contrasts of the compendium. The three ontology roots say nothing and are left out.
WITH enriched AS (
    SELECT DISTINCT contrast_id, go_id  -- a signature may be enriched up and down
    FROM core.go_enrichment
    WHERE fwer_over < core.go_fwer() AND go_id NOT IN ('GO:0008150', 'GO:0003674', 'GO:0005575')
),
frequency AS (
    SELECT go_id, count(*) AS n_contrasts FROM enriched GROUP BY go_id
),
ranked AS (
    SELECT e.contrast_id, e.go_id, f.n_contrasts,
           row_number() OVER (
               PARTITION BY e.contrast_id ORDER BY f.n_contrasts DESC, e.go_id
           ) AS position
    FROM enriched e
    JOIN frequency f USING (go_id)
)
SELECT r.contrast_id, r.go_id, t.name, r.n_contrasts
FROM ranked r
LEFT JOIN core.go_terms t USING (go_id)
WHERE r.position = 1;
