-- Alternative GO IDs and the primary ID each stands for.
SELECT alt_id, go_id AS primary_id FROM core.go_alt_ids;
