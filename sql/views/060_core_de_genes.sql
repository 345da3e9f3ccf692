-- DE genes of every contrast at the study's threshold (adj.P.Val < 0.05), with gene names.
CREATE OR REPLACE VIEW core.de_genes AS
SELECT r.contrast_id, g.gene_id, g.symbol, r.gene_index, r.log_fc, r.adj_p_value
FROM core.de_results r
JOIN core.genes g USING (gene_index)
WHERE r.adj_p_value < 0.05;

-- Enriched GO terms with names, at the study's threshold (FWER < 0.05).
CREATE OR REPLACE VIEW core.enriched_terms AS
SELECT e.contrast_id, e.go_id, t.name, t.namespace, e.n_de_in_term, e.n_in_term,
       e.p_over, e.fdr_over, e.fwer_over
FROM core.go_enrichment e
JOIN core.go_terms t USING (go_id)
WHERE e.fwer_over < 0.05;
