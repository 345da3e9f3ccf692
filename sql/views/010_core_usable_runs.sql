-- DEE2 runs usable for DE: QC PASS or WARN (DEE2's WARN flags one metric; FAIL runs are never used).
CREATE OR REPLACE VIEW core.usable_runs AS
SELECT *
FROM raw.dee2_runs
WHERE qc_status IN ('PASS', 'WARN');
