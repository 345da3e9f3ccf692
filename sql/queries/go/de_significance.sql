-- gene_index and adj.P.Val of the DE results of a list of contrasts.
SELECT contrast_id, gene_index, adj_p_value
FROM core.de_results
WHERE contrast_id IN (SELECT unnest($contrast_ids::VARCHAR[]))
ORDER BY contrast_id, gene_index;
