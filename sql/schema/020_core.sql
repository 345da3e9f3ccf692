CREATE TABLE IF NOT EXISTS core.genes (
    gene_index INTEGER PRIMARY KEY,     -- stable column order of every matrix
    gene_id VARCHAR NOT NULL,           -- Ensembl gene ID (unique: new IDs get new indexes)
    symbol VARCHAR,
    length INTEGER,
    species VARCHAR
);

CREATE TABLE IF NOT EXISTS core.datasets (
    gse VARCHAR PRIMARY KEY,
    species VARCHAR,
    title VARCHAR,
    platforms VARCHAR[],
    n_geo_samples INTEGER,
    group_key VARCHAR,                  -- the characteristic that defines groups (NULL: none found)
    n_groups INTEGER,
    grouping_note VARCHAR
);

CREATE TABLE IF NOT EXISTS core.samples (
    gse VARCHAR NOT NULL,
    gsm VARCHAR NOT NULL,
    srr VARCHAR,                        -- its runs with counts, joined by '+' when several
    group_label VARCHAR,
    PRIMARY KEY (gse, gsm)
);

CREATE TABLE IF NOT EXISTS core.contrasts (
    contrast_id VARCHAR PRIMARY KEY,    -- "{gse}:{group_b}-vs-{group_a}"; logFC = mean(B) - mean(A)
    gse VARCHAR NOT NULL,
    group_key VARCHAR,
    group_a VARCHAR NOT NULL,           -- reference group
    group_b VARCHAR NOT NULL,
    samples_a VARCHAR[] NOT NULL,       -- GSMs
    samples_b VARCHAR[] NOT NULL,
    runs_a VARCHAR[] NOT NULL,          -- per sample, its SRRs with counts ('+'-joined, summed)
    runs_b VARCHAR[] NOT NULL,
    mode VARCHAR NOT NULL               -- degae | study
);

CREATE TABLE IF NOT EXISTS core.de_runs (
    contrast_id VARCHAR PRIMARY KEY,
    status VARCHAR NOT NULL,            -- done | skipped
    reason VARCHAR,
    source VARCHAR NOT NULL,            -- degae | limma_export
    inputs_hash VARCHAR,                -- md5 of the contrast's runs: a changed contrast is refit
    n_genes INTEGER,
    n_de INTEGER,
    config VARCHAR,
    finished_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- Per-gene DE values: core.de_values (sql/schema/045_de_values.sql), read through the view
-- core.de_results.

CREATE TABLE IF NOT EXISTS core.go_terms (
    go_id VARCHAR PRIMARY KEY,
    name VARCHAR,
    namespace VARCHAR,
    is_obsolete BOOLEAN NOT NULL DEFAULT false
);

CREATE TABLE IF NOT EXISTS core.go_edges (
    child VARCHAR NOT NULL,
    parent VARCHAR NOT NULL,
    relation VARCHAR NOT NULL,
    PRIMARY KEY (child, parent, relation)
);

CREATE TABLE IF NOT EXISTS core.go_annotations (
    gene_index INTEGER NOT NULL,
    go_id VARCHAR NOT NULL,
    evidence VARCHAR,
    source VARCHAR,
    PRIMARY KEY (gene_index, go_id, evidence)
);

CREATE TABLE IF NOT EXISTS core.go_runs (
    contrast_id VARCHAR PRIMARY KEY,
    status VARCHAR NOT NULL,            -- done | skipped
    reason VARCHAR,
    source VARCHAR NOT NULL,            -- degae | gofuncr_export
    n_de INTEGER,
    n_terms_tested INTEGER,
    n_enriched INTEGER,
    config VARCHAR,
    finished_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    inputs_hash VARCHAR                 -- md5 of the DE fit, GO/gene source files and settings
);
-- Warehouses made before inputs_hash existed gain the column (their contrasts rerun once).
ALTER TABLE core.go_runs ADD COLUMN IF NOT EXISTS inputs_hash VARCHAR;

CREATE TABLE IF NOT EXISTS core.go_enrichment (
    contrast_id VARCHAR NOT NULL,
    go_id VARCHAR NOT NULL,
    n_de_in_term INTEGER,
    n_in_term INTEGER,
    n_de INTEGER,
    n_tested INTEGER,
    p_over DOUBLE,
    p_under DOUBLE,
    fdr_over DOUBLE,
    fwer_over DOUBLE,
    fwer_under DOUBLE,
    leading_edge INTEGER[],             -- gene_index of the DE genes in the term
    direction VARCHAR NOT NULL DEFAULT 'both', -- up | down (a signature's strongest genes) | both
    PRIMARY KEY (contrast_id, go_id, direction)
);

-- Secondary GO IDs (OBO alt_id) mapped to their primary term, so old annotations still resolve.
CREATE TABLE IF NOT EXISTS core.go_alt_ids (
    alt_id VARCHAR PRIMARY KEY,
    go_id VARCHAR NOT NULL
);

-- Optional cross-references of genes (Entrez Gene IDs from an NCBI ID table) for gene2go files.
CREATE TABLE IF NOT EXISTS core.gene_xrefs (
    gene_index INTEGER NOT NULL,
    entrez VARCHAR NOT NULL,
    PRIMARY KEY (gene_index, entrez)
);
