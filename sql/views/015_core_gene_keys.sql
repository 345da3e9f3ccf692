-- Every key a gene can be named by in an annotation file: its symbol, and Entrez IDs if known.
CREATE OR REPLACE VIEW core.gene_keys AS
SELECT g.gene_index, g.symbol, x.entrez
FROM core.genes g
LEFT JOIN core.gene_xrefs x USING (gene_index);
