-- The log2FC of one batch of contrasts as (contrast, gene_index, value) triples; missing genes have no row.
SELECT contrast_id, gene_index, log_fc::FLOAT AS log_fc
FROM core.de_results
WHERE contrast_id IN (SELECT unnest($contrast_ids));
