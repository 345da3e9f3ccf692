-- Row counts and order-independent content hashes of the tables a model is trained on.
-- DuckDB's hash() is stable within a DuckDB version, which is what a snapshot compares. The
-- finished runs' input hashes stand for value kinds beyond log2FC and t (an imported
-- signature's content hash, say).
SELECT
    (SELECT count(*) FROM core.genes) AS genes,
    (SELECT count(*) FROM core.contrasts) AS contrasts,
    (SELECT count(*) FROM core.de_runs WHERE status = 'done') AS de_runs_done,
    (SELECT count(*) FROM core.de_results) AS de_results,
    (SELECT count(*) FROM core.go_enrichment) AS go_enrichment,
    (SELECT coalesce(bit_xor(hash(gene_index, gene_id)), 0) FROM core.genes) AS genes_hash,
    (SELECT coalesce(bit_xor(hash(contrast_id, gene_index, log_fc, t)), 0) FROM core.de_results)
        AS de_results_hash,
    (SELECT coalesce(bit_xor(hash(contrast_id, source, inputs_hash)), 0)
        FROM core.de_runs WHERE status = 'done') AS de_runs_hash,
    (SELECT coalesce(bit_xor(hash(contrast_id, go_id, fwer_over, fdr_over)), 0)
        FROM core.go_enrichment) AS go_enrichment_hash;
