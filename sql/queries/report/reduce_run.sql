-- The newest reduce run: its ID, genes kept by the variance threshold, and its settings.
SELECT model_id, value AS genes_kept, n AS genes, detail
FROM ml.validation
WHERE check_name = 'variance_threshold' AND method = 'genes_kept' AND model_id LIKE 'reduce-%'
ORDER BY json_extract_string(detail, '$.created_at') DESC NULLS LAST, model_id
LIMIT 1;
