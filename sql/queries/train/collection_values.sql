-- The core.de_results columns a collection fills, and the one it is scored by (its own kind).
SELECT value_kinds, score
FROM core.collections
WHERE collection = $collection;
