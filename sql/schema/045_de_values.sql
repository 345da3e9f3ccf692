-- Per-gene values of every contrast, stored compactly; read them through the view
-- core.de_results (contrast_id, gene_index, log_fc, ave_expr, t, p_value, adj_p_value, b, z).
--
-- A contrast is stored under an integer key, given when its values are first written and kept
-- for good (ingest rebuilds core.contrasts wholesale, so its row order is no key). The one writer
-- (degae_tools/steps/runs.py: write_de_results) writes a contrast's rows together, sorted by
-- p-value: a one-contrast query reads one run of row groups, and adj.P.Val, monotone in that
-- order, compresses to almost nothing.
--
-- Precision: t, ave_expr, b and z are FLOAT, as limma's precision survives them (the R parity
-- tests compare them to a relative 1e-6; FLOAT keeps 6e-8). p_value and adj_p_value stay DOUBLE:
-- p-values reach 1e-300, below FLOAT's range, and R parity compares them to 1e-8 absolute, which
-- FLOAT misses near 1 (3e-8). log_fc stays DOUBLE: the study's raw-count log2FC are differences of
-- count means, checked to 1e-9 against the study's arithmetic, and every model is trained on it.
CREATE TABLE IF NOT EXISTS core.contrast_keys (
    contrast_key INTEGER PRIMARY KEY,
    contrast_id VARCHAR NOT NULL UNIQUE
);

CREATE TABLE IF NOT EXISTS core.de_values (
    contrast_key INTEGER NOT NULL,      -- core.contrast_keys
    gene_index INTEGER NOT NULL,
    log_fc DOUBLE,
    ave_expr FLOAT,
    t FLOAT,
    p_value DOUBLE,
    adj_p_value DOUBLE,
    b FLOAT,
    z FLOAT                             -- moderated z of imported signatures (NULL for limma)
    -- Unique on (contrast_key, gene_index), kept by the writer (delete + insert per contrast in
    -- one transaction). No PRIMARY KEY: at 7,130 × 48,978 rows its index triples the insert cost.
);
