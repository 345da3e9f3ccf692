-- GO terms of the loaded ontology, obsolete ones flagged.
SELECT go_id, is_obsolete FROM core.go_terms;
