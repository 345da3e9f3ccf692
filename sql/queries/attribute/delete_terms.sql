DELETE FROM ml.term_genes WHERE model_id = ?;
