-- Annotations propagated up the DAG: a gene annotated to a term is annotated to all its ancestors.
CREATE OR REPLACE VIEW core.go_annotations_propagated AS
SELECT DISTINCT a.gene_index, anc.ancestor AS go_id
FROM core.go_annotations a
JOIN core.go_ancestors anc ON anc.go_id = a.go_id;
