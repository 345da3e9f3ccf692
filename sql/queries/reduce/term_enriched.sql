-- Contrasts in which one GO term ($go_id) is enriched at FWER_over < core.go_fwer().
SELECT contrast_id FROM core.go_enrichment WHERE go_id = $go_id AND fwer_over < core.go_fwer();
