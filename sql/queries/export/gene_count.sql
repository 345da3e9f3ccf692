-- Matrix width: gene_index must run 0..n-1 without gaps.
SELECT count(*) AS n_genes, coalesce(min(gene_index), 0) AS lo, coalesce(max(gene_index), -1) AS hi
FROM core.genes;
