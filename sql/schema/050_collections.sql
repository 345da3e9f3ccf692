-- Collections of contrasts beside the compendium (whose contrasts stay in core.contrasts, the
-- implicit collection 'compendium'): imported signature matrices and imported DE tables. Their
-- per-gene values are in core.de_results and their run rows in core.de_runs (source
-- 'import:<collection>'), like every contrast. Ingest's contrast rebuild never touches them.
CREATE TABLE IF NOT EXISTS core.collections (
    collection VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL,              -- signatures | de_tables (compendium: core.contrasts)
    value_kinds VARCHAR[] NOT NULL,     -- the core.de_results columns it fills: z, t, log_fc, ...
    score VARCHAR NOT NULL,             -- the one of them GO labels and `similar` rank genes by
    species VARCHAR NOT NULL,           -- hsapiens | mmusculus (core.genes.species)
    gene_id_system VARCHAR NOT NULL,    -- entrez | symbol | ensembl: how its files name genes
    source VARCHAR,                     -- the file imported last
    n_rows INTEGER NOT NULL,            -- signatures in the collection
    n_genes_mapped INTEGER NOT NULL,    -- distinct genes with a value in at least one signature
    n_genes_unmapped INTEGER NOT NULL,  -- gene names of its files not mapped onto core.genes
    updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- One row per imported signature (a row of a matrix, or one DE table): a contrast of its own.
CREATE TABLE IF NOT EXISTS core.signatures (
    contrast_id VARCHAR PRIMARY KEY,    -- "{collection}:{name}"
    collection VARCHAR NOT NULL,
    name VARCHAR NOT NULL,              -- as the file names it (e.g. a DrugBank ID)
    source_file VARCHAR NOT NULL,
    line BIGINT NOT NULL,               -- its line in the file (1: the whole file, a DE table)
    content_hash VARCHAR NOT NULL,      -- md5 of its gene values: an unchanged one is kept as is
    n_genes INTEGER NOT NULL,           -- genes with a value
    imported_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- Imported signatures carry a moderated z-score (L1000) or a Wald statistic (DESeq2), neither a
-- limma t: core.de_results has the column z (NULL for limma's own fits), stored in core.de_values
-- (sql/schema/045_de_values.sql).

-- A signature's GO labels come from its strongest genes up and down separately, so a term can
-- be enriched in both directions; the compendium's contrasts keep 'both'. New warehouses key on
-- the direction too (sql/schema/020_core.sql); older ones get the column here and the key once
-- (sql/schema/051_go_enrichment_direction_key.sql).
ALTER TABLE core.go_enrichment ADD COLUMN IF NOT EXISTS direction VARCHAR DEFAULT 'both';
