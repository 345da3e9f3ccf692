SELECT gene_id, gene_index FROM core.genes ORDER BY gene_index;
