-- The matrix column the next new gene gets.
SELECT coalesce(max(gene_index) + 1, 0) FROM core.genes;
