-- Width of a log2FC matrix: one column per core.genes.gene_index.
SELECT coalesce(max(gene_index) + 1, 0) AS n_genes FROM core.genes;
