-- Per-term gene lists for GMT export: the `top` genes of each term by mean |attribution|.
-- Parameters: $model_id, $top.
SELECT tg.go_id, any_value(t.name) AS name,
       list(coalesce(g.symbol, g.gene_id) ORDER BY tg.rank) AS genes
FROM ml.term_genes tg
JOIN core.genes g USING (gene_index)
LEFT JOIN core.go_terms t USING (go_id)
WHERE tg.model_id = $model_id AND tg.rank <= $top
GROUP BY tg.go_id
ORDER BY tg.go_id;
