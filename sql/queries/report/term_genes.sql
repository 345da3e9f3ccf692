-- Top genes ($n_genes per term) of the GO terms with the most attributed pairs ($n_terms per model).
WITH term_pairs AS (
    SELECT model_id, go_id, max(n_pairs) AS n_pairs
    FROM ml.term_genes
    WHERE go_id NOT IN ('GO:0008150', 'GO:0003674', 'GO:0005575')  -- the ontology roots
    GROUP BY model_id, go_id
),
terms AS (
    SELECT model_id, go_id, n_pairs
    FROM term_pairs
    QUALIFY row_number() OVER (PARTITION BY model_id ORDER BY n_pairs DESC, go_id) <= $n_terms
)
SELECT tg.model_id, tg.go_id, t.name, terms.n_pairs, tg.rank, g.symbol, g.gene_id,
       tg.mean_abs_attribution, tg.frac_top_k
FROM ml.term_genes tg
JOIN terms USING (model_id, go_id)
LEFT JOIN core.go_terms t USING (go_id)
LEFT JOIN core.genes g USING (gene_index)
WHERE tg.rank <= $n_genes
ORDER BY tg.model_id, terms.n_pairs DESC, tg.go_id, tg.rank;
