-- Enriched GO terms with names: FWER below core.go_fwer() (degae_tools.thresholds.GO_FWER, the
-- study's 0.05).
CREATE OR REPLACE VIEW core.enriched_terms AS
SELECT e.contrast_id, e.go_id, t.name, t.namespace, e.n_de_in_term, e.n_in_term,
       e.p_over, e.fdr_over, e.fwer_over
FROM core.go_enrichment e
JOIN core.go_terms t USING (go_id)
WHERE e.fwer_over < core.go_fwer();
