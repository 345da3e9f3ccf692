-- new_genes: an Arrow table registered by degae_tools.attribute (columns in table order).
INSERT INTO ml.gene_attributions SELECT * FROM new_genes;
