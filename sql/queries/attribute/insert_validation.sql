-- new_validation: rows registered by degae_tools.validate; a rerun replaces the same checks.
INSERT OR REPLACE INTO ml.validation (model_id, check_name, method, value, n, detail)
SELECT model_id, check_name, method, value, n, detail FROM new_validation;
