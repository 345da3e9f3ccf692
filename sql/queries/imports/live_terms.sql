-- GO terms an imported enrichment may name: those of the loaded ontology that are not obsolete.
SELECT go_id FROM core.go_terms WHERE NOT is_obsolete;
