-- Contrasts analysed and skipped by the DE and GO steps, with the commonest skip reasons.
SELECT 'differential expression' AS step, status, coalesce(reason, '') AS reason, count(*) AS n
FROM core.de_runs GROUP BY ALL
UNION ALL
SELECT 'GO enrichment', status, coalesce(reason, ''), count(*) FROM core.go_runs GROUP BY ALL
ORDER BY step DESC, status, n DESC;
