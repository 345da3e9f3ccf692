-- Names of the given GO terms ($go_ids: a list of go_id).
SELECT go_id, name FROM core.go_terms WHERE list_contains($go_ids, go_id);
