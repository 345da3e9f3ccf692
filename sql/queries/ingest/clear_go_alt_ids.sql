-- A new ontology replaces the old one whole.
DELETE FROM core.go_alt_ids;
