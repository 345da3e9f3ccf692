-- Remove one check's rows of one model or reduce run before they are written again.
DELETE FROM ml.validation WHERE model_id = $1 AND check_name = $2;
