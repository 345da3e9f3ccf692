-- The rows of the latest comparison run, for the report.
SELECT pipeline, metric, layers, value, seconds, note
FROM ml.study_comparison
WHERE run_id = (SELECT run_id FROM ml.study_comparison ORDER BY created_at DESC LIMIT 1)
ORDER BY metric, layers, pipeline;
