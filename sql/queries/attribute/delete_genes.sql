DELETE FROM ml.gene_attributions WHERE model_id = ?;
