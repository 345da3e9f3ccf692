-- Attributed pairs of a model with their completeness check and the enrichment's leading edge
-- (the DE genes annotated to the term in that experiment; empty when not enriched or unknown).
SELECT p.contrast_id, p.go_id, coalesce(e.leading_edge, []::INTEGER[]) AS leading_edge,
       p.completeness_gap, p.f_x - p.f_baseline AS delta
FROM ml.attribution_pairs p
LEFT JOIN core.go_enrichment e USING (contrast_id, go_id)
WHERE p.model_id = $model_id
ORDER BY p.go_id, p.contrast_id;
