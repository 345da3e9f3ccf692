-- One row per GEO series seen anywhere, with every inclusion criterion it fails (failed_criteria,
-- in the order below) and the first of them (exclusion_reason; NULL = included).
-- Criteria (the reference study's): a GEO series, runs that pass QC, counts, more than one group,
-- and at least one contrast with >= 2 replicates in both groups. A series matrix or count file
-- that ingest rejected says so (its rejection is in core.open_rejections), rather than "no ...".
CREATE OR REPLACE VIEW core.dataset_inclusion AS
WITH rejected_files AS (
    SELECT kind, regexp_extract(parse_filename(path), '^(GSE[0-9]+)[._]', 1) AS gse
    FROM raw.source_files
    WHERE status = 'rejected' AND kind IN ('series_matrix', 'counts')
),
series AS (
    SELECT gse FROM raw.dee2_runs WHERE gse IS NOT NULL
    UNION
    SELECT gse FROM raw.geo_series
    UNION
    SELECT gse FROM rejected_files WHERE gse <> ''
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
),
criteria AS (
    SELECT s.gse,
           coalesce(r.n_runs, 0) AS n_runs,
           coalesce(r.n_runs_qc_pass, 0) AS n_runs_qc_pass,
           d.n_groups,
           coalesce(c.n_contrasts_replicated, 0) AS n_contrasts,
           list_filter([
               CASE WHEN g.gse IS NULL THEN
                   CASE WHEN s.gse IN (SELECT gse FROM rejected_files WHERE kind = 'series_matrix')
                        THEN 'GEO series matrix rejected' ELSE 'no GEO series matrix' END
               END,
               CASE WHEN coalesce(r.n_runs, 0) = 0 THEN 'no DEE2 runs' END,
               CASE WHEN r.n_runs > 0 AND r.n_runs_qc_pass = 0 THEN 'no run passes DEE2 QC' END,
               CASE WHEN cf.gse IS NULL THEN
                   CASE WHEN s.gse IN (SELECT gse FROM rejected_files WHERE kind = 'counts')
                        THEN 'count file rejected' ELSE 'no counts' END
               END,
               CASE WHEN g.gse IS NOT NULL AND coalesce(d.n_groups, 0) < 2
                    THEN 'fewer than two groups' END,
               CASE WHEN coalesce(d.n_groups, 0) >= 2 AND coalesce(c.n_contrasts_replicated, 0) = 0
                    THEN 'no group pair with >= 2 replicates each' END
           ], lambda x: x IS NOT NULL) AS failed_criteria
    FROM series s
    LEFT JOIN runs r USING (gse)
    LEFT JOIN raw.geo_series g USING (gse)
    LEFT JOIN raw.count_files cf USING (gse)
    LEFT JOIN core.datasets d USING (gse)
    LEFT JOIN contrast_counts c USING (gse)
)
SELECT gse, n_runs, n_runs_qc_pass, n_groups, n_contrasts,
       failed_criteria[1] AS exclusion_reason,
       failed_criteria
FROM criteria;
