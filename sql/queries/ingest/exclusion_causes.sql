-- Why series give no contrast: each failed inclusion criterion with the series failing it (a
-- series fails several at once) and the first three of them, the largest cause first.
SELECT criterion, count(*) AS n_series, sum(n_runs) AS n_runs,
       list(gse ORDER BY gse)[1:3] AS examples
FROM (SELECT unnest(failed_criteria) AS criterion, gse, n_runs FROM core.dataset_inclusion)
GROUP BY criterion
ORDER BY n_series DESC, criterion;
