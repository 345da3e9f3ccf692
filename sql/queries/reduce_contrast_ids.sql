-- Every contrast with DE results, in a stable order: the rows of the matrix that reduce works on.
SELECT DISTINCT contrast_id FROM core.de_results ORDER BY contrast_id;
