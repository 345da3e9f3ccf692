-- Fraction of variance per principal component of one reduce run ($model_id), in component order.
SELECT n AS component, value AS ratio
FROM ml.validation
WHERE model_id = $model_id AND check_name = 'pca_explained_variance'
ORDER BY n;
