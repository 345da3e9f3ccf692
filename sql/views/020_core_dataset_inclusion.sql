-- One row per GEO series seen anywhere, with the first inclusion criterion it fails (NULL = included).
-- Criteria (the reference study's): a GEO series, runs that pass QC, more than one group,
-- and at least one contrast with >= 2 replicates in both groups.
CREATE OR REPLACE VIEW core.dataset_inclusion AS
WITH series AS (
    SELECT gse FROM raw.dee2_runs WHERE gse IS NOT NULL
    UNION
    SELECT gse FROM raw.geo_series
),
runs AS (
    SELECT gse,
           count(*) AS n_runs,
           count(*) FILTER (WHERE qc_status IN ('PASS', 'WARN')) AS n_runs_qc_pass
    FROM raw.dee2_runs
    WHERE gse IS NOT NULL
    GROUP BY gse
),
contrast_counts AS (
    SELECT gse,
           count(*) AS n_contrasts,
           count(*) FILTER (WHERE len(runs_a) >= 2 AND len(runs_b) >= 2) AS n_contrasts_replicated
    FROM core.contrasts
    GROUP BY gse
)
SELECT s.gse,
       coalesce(r.n_runs, 0) AS n_runs,
       coalesce(r.n_runs_qc_pass, 0) AS n_runs_qc_pass,
       d.n_groups,
       coalesce(c.n_contrasts_replicated, 0) AS n_contrasts,
       CASE
           WHEN g.gse IS NULL THEN 'no GEO series matrix'
           WHEN coalesce(r.n_runs, 0) = 0 THEN 'no DEE2 runs'
           WHEN coalesce(r.n_runs_qc_pass, 0) = 0 THEN 'no run passes DEE2 QC'
           WHEN cf.gse IS NULL THEN 'no counts'
           WHEN coalesce(d.n_groups, 0) < 2 THEN 'fewer than two groups'
           WHEN coalesce(c.n_contrasts_replicated, 0) = 0 THEN 'no group pair with >= 2 replicates each'
       END AS exclusion_reason
FROM series s
LEFT JOIN runs r USING (gse)
LEFT JOIN raw.geo_series g USING (gse)
LEFT JOIN raw.count_files cf USING (gse)
LEFT JOIN core.datasets d USING (gse)
LEFT JOIN contrast_counts c USING (gse);
