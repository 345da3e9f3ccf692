-- Reflexive-transitive closure of the GO DAG over is_a and part_of (the relations GOfuncR propagates).
CREATE OR REPLACE VIEW core.go_ancestors AS
WITH RECURSIVE closure(go_id, ancestor) AS (
    SELECT go_id, go_id FROM core.go_terms
    UNION
    SELECT c.go_id, e.parent
    FROM closure c
    JOIN core.go_edges e ON e.child = c.ancestor AND e.relation IN ('is_a', 'part_of')
)
SELECT go_id, ancestor FROM closure;
