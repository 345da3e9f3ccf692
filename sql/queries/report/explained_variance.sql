-- Fraction of variance per principal component of one reduce run ($1), in component order.
SELECT n AS component, value AS ratio
FROM ml.validation
WHERE model_id = $1 AND check_name = 'pca_explained_variance'
ORDER BY n;
