-- Every value of one collection in the column it ranks genes by (its `score`: z, t or log_fc),
-- with each signature's name: the matrix `similar` compares a user's table with.
SELECT s.contrast_id, s.name, r.gene_index,
       CASE c.score WHEN 'z' THEN r.z WHEN 't' THEN r.t WHEN 'log_fc' THEN r.log_fc END AS value,
       c.score AS value_column
FROM core.signatures AS s
JOIN core.collections AS c USING (collection)
JOIN core.de_runs AS d ON d.contrast_id = s.contrast_id AND d.status = 'done'
JOIN core.de_results AS r ON r.contrast_id = s.contrast_id
WHERE s.collection = $collection AND value IS NOT NULL
ORDER BY s.contrast_id, r.gene_index;
