-- gene_index and adj.P.Val of the DE results of a list of contrast keys; for an imported
-- signature also the value its collection ranks genes by (`score`: z, t or log_fc), which its GO
-- labels' candidate genes come from instead of adj.P.Val.
-- It reads core.de_values by key, not the core.de_results view by contrast ID: keys are given in
-- the order values are first written, so a chunk of consecutive keys is one run of row groups
-- and the BETWEEN lets DuckDB skip the rest of the table by its zone maps. Filtering the view by
-- ID instead read a share of the whole table for every chunk, so enrichment slowed as the
-- warehouse grew.
SELECT k.contrast_id, v.gene_index, v.adj_p_value,
       CASE c.score WHEN 'z' THEN v.z WHEN 't' THEN v.t WHEN 'log_fc' THEN v.log_fc END AS score,
       s.contrast_id IS NOT NULL AS signature
FROM core.de_values AS v
JOIN core.contrast_keys AS k USING (contrast_key)
LEFT JOIN core.signatures AS s ON s.contrast_id = k.contrast_id
LEFT JOIN core.collections AS c ON c.collection = s.collection
WHERE v.contrast_key BETWEEN $first AND $last
  AND v.contrast_key IN (SELECT unnest($keys::INTEGER[]))
ORDER BY v.contrast_key, v.gene_index;
