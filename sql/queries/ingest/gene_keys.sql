-- Every way annotations name a gene: symbol and Entrez ID, with its matrix column.
SELECT gene_index, symbol, entrez FROM core.gene_keys;
