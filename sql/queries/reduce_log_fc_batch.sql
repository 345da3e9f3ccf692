-- log2FC of a batch of contrasts ($1: list of contrast_id), long format.
SELECT contrast_id, gene_index, log_fc
FROM core.de_results
WHERE contrast_id IN (SELECT unnest($1::VARCHAR[]));
