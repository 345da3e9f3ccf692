-- Every gene with its Ensembl ID and symbol, in gene_index order (a symbol names its first gene).
SELECT gene_index, gene_id, symbol FROM core.genes ORDER BY gene_index;
