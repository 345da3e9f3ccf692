-- GEO samples of every series in file order, with their usable DEE2 run (QC PASS/WARN), if any.
SELECT s.gse, s.gsm, s.position, r.srr
FROM raw.geo_samples s
LEFT JOIN core.usable_runs r ON r.gsm = s.gsm
ORDER BY s.gse, s.position;
