-- What enrichment needs: GO terms, annotations, and contrasts with DE results.
SELECT (SELECT count(*) FROM core.go_terms) AS terms,
       (SELECT count(*) FROM core.go_annotations) AS annotations,
       (SELECT count(*) FROM core.de_runs WHERE status = 'done') AS with_results;
