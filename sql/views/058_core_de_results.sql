-- Every contrast's per-gene values, by contrast ID: the readable face of core.de_values
-- (sql/schema/045_de_values.sql says how they are stored, and at which precision).
CREATE OR REPLACE VIEW core.de_results AS
SELECT k.contrast_id, v.gene_index, v.log_fc, v.ave_expr, v.t, v.p_value, v.adj_p_value, v.b, v.z
FROM core.de_values AS v
JOIN core.contrast_keys AS k USING (contrast_key);
