-- Contrasts in which one GO term ($1) is enriched at FWER_over < 0.05.
SELECT contrast_id FROM core.go_enrichment WHERE go_id = $1 AND fwer_over < 0.05;
