-- DE genes of every contrast: adj.P.Val below core.de_adj_p() (degae_tools.thresholds.DE_ADJ_P,
-- the study's 0.05), with gene names.
CREATE OR REPLACE VIEW core.de_genes AS
SELECT r.contrast_id, g.gene_id, g.symbol, r.gene_index, r.log_fc, r.adj_p_value
FROM core.de_results r
JOIN core.genes g USING (gene_index)
WHERE r.adj_p_value < core.de_adj_p();
