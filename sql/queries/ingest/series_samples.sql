-- GEO samples of every series in file order, with all their usable DEE2 runs (QC PASS/WARN):
-- a sample sequenced in several runs (lanes, technical replicates) lists them all, sorted.
SELECT s.gse, s.gsm, s.position,
       list(r.srr ORDER BY r.srr) FILTER (WHERE r.srr IS NOT NULL) AS srrs
FROM raw.geo_samples s
LEFT JOIN core.usable_runs r ON r.gsm = s.gsm
GROUP BY s.gse, s.gsm, s.position
ORDER BY s.gse, s.position;
