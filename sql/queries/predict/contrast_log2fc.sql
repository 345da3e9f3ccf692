SELECT gene_index, log_fc FROM core.de_results WHERE contrast_id = ? ORDER BY gene_index;
