-- Contrasts in which one GO term ($1) is enriched at FWER_over < core.go_fwer().
SELECT contrast_id FROM core.go_enrichment WHERE go_id = $1 AND fwer_over < core.go_fwer();
