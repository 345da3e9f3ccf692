-- Every known gene with its matrix column.
SELECT gene_id, gene_index FROM core.genes;
