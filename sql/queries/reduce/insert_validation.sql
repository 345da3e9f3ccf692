-- Figures from the registered Arrow table `validation_rows`.
INSERT INTO ml.validation (model_id, check_name, method, value, n, detail)
SELECT model_id, check_name, method, value, n, detail FROM validation_rows;
