-- A comparison run replaces an earlier run of the same id.
DELETE FROM ml.study_comparison WHERE run_id = $run_id;
