-- The rows of one comparison run.
INSERT INTO ml.study_comparison (run_id, pipeline, metric, layers, value, seconds, note)
SELECT run_id, pipeline, metric, layers, value, seconds, note FROM study_comparison_rows;
