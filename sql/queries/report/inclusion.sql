-- GEO series per inclusion outcome: 'included', or the first criterion each one fails.
WITH outcome AS (
    SELECT coalesce(exclusion_reason, 'included') AS status, n_runs, n_contrasts
    FROM core.dataset_inclusion
)
SELECT status, count(*) AS n_series, sum(n_runs) AS n_runs, sum(n_contrasts) AS n_contrasts
FROM outcome
GROUP BY status
ORDER BY status <> 'included', n_series DESC, status;
