-- The warehouse's genes of one species with every key a file may name them by: Ensembl ID,
-- symbol and Entrez IDs (one row per cross-reference).
SELECT g.gene_index, g.gene_id, g.symbol, x.entrez
FROM core.genes AS g
LEFT JOIN core.gene_xrefs AS x USING (gene_index)
WHERE g.species = $species
ORDER BY g.gene_index;
