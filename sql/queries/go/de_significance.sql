-- gene_index and adj.P.Val of the DE results of a list of contrasts; for an imported signature
-- also the value its collection ranks genes by (`score`: z, t or log_fc), which its GO labels'
-- candidate genes come from instead of adj.P.Val.
SELECT r.contrast_id, r.gene_index, r.adj_p_value,
       CASE c.score WHEN 'z' THEN r.z WHEN 't' THEN r.t WHEN 'log_fc' THEN r.log_fc END AS score,
       s.contrast_id IS NOT NULL AS signature
FROM core.de_results AS r
LEFT JOIN core.signatures AS s ON s.contrast_id = r.contrast_id
LEFT JOIN core.collections AS c ON c.collection = s.collection
WHERE r.contrast_id IN (SELECT unnest($contrast_ids::VARCHAR[]))
ORDER BY r.contrast_id, r.gene_index;
