-- new_terms: an Arrow table registered by degae_tools.attribute (columns in table order).
INSERT INTO ml.term_genes SELECT * FROM new_terms;
