-- One contrast's log2FC per gene, in gene_index order.
SELECT gene_index, log_fc FROM core.de_results WHERE contrast_id = $contrast_id ORDER BY gene_index;
