-- Enriched (contrast, GO term) pairs of the given contrasts under one p-value column and threshold.
SELECT contrast_id, go_id
FROM core.go_enrichment
WHERE contrast_id IN (SELECT unnest($contrast_ids))
  AND CASE $column
        WHEN 'fwer_over' THEN fwer_over
        WHEN 'fdr_over' THEN fdr_over
        WHEN 'p_over' THEN p_over
        WHEN 'fwer_under' THEN fwer_under
        WHEN 'p_under' THEN p_under
      END < $threshold
ORDER BY go_id;
