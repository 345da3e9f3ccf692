-- Attributed pairs of a model with their completeness check and the enrichment's leading edge
-- (the DE genes annotated to the term in that experiment, over every direction a signature was
-- enriched in; empty when not enriched or unknown).
WITH pairs AS (
    SELECT contrast_id, go_id, completeness_gap, f_x - f_baseline AS delta
    FROM ml.attribution_pairs
    WHERE model_id = $model_id
),
edges AS (
    SELECT e.contrast_id, e.go_id, list_distinct(flatten(list(e.leading_edge))) AS leading_edge
    FROM core.go_enrichment AS e
    SEMI JOIN pairs AS p USING (contrast_id, go_id)
    WHERE e.leading_edge IS NOT NULL
    GROUP BY e.contrast_id, e.go_id
)
SELECT p.contrast_id, p.go_id, coalesce(e.leading_edge, []::INTEGER[]) AS leading_edge,
       p.completeness_gap, p.delta
FROM pairs AS p
LEFT JOIN edges AS e USING (contrast_id, go_id)
ORDER BY p.go_id, p.contrast_id;
