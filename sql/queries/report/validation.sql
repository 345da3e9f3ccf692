-- Checks of models and attributions, except the explained-variance figures of reduce runs.
SELECT model_id, check_name, method, value, n, detail
FROM ml.validation
WHERE check_name NOT IN ('pca_explained_variance', 'pca_components_for_variance',
                         'variance_threshold')
ORDER BY model_id, check_name, method;
