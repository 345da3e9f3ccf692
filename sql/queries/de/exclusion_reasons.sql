-- Why series give no included contrast: each excluded series' first failed inclusion criterion,
-- with how many series fail it, the largest cause first.
SELECT exclusion_reason, count(*) AS n_series
FROM core.dataset_inclusion
WHERE exclusion_reason IS NOT NULL
GROUP BY exclusion_reason
ORDER BY n_series DESC, exclusion_reason;
