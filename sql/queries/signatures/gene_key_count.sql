-- Genes and their cross-references: when an import changes this count, annotation files that
-- named genes unknown at their ingest are worth loading again.
SELECT (SELECT count(*) FROM core.genes) + (SELECT count(*) FROM core.gene_xrefs);
