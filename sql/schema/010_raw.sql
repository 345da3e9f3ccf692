-- Every input file loaded once: a file whose content hash is already here is skipped (idempotent ingest).
CREATE TABLE IF NOT EXISTS raw.source_files (
    path VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    size_bytes BIGINT NOT NULL,
    status VARCHAR NOT NULL,            -- loaded | rejected
    n_rows BIGINT,
    loaded_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (kind, sha256)
);

CREATE TABLE IF NOT EXISTS raw.dee2_runs (
    srr VARCHAR PRIMARY KEY,
    species VARCHAR,
    qc_summary VARCHAR,
    qc_status VARCHAR,                  -- PASS | WARN | FAIL
    srx VARCHAR,
    srs VARCHAR,
    srp VARCHAR,
    gse VARCHAR,
    gsm VARCHAR,
    title VARCHAR,
    source_file VARCHAR,
    ingested_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS raw.geo_series (
    gse VARCHAR PRIMARY KEY,
    title VARCHAR,
    platforms VARCHAR[],
    source_file VARCHAR
);

CREATE TABLE IF NOT EXISTS raw.geo_samples (
    gse VARCHAR NOT NULL,
    gsm VARCHAR NOT NULL,
    position INTEGER NOT NULL,          -- column order in the series matrix
    title VARCHAR,
    source_name VARCHAR,
    PRIMARY KEY (gse, gsm)
);

CREATE TABLE IF NOT EXISTS raw.geo_characteristics (
    gse VARCHAR NOT NULL,
    gsm VARCHAR NOT NULL,
    "row" INTEGER NOT NULL,
    key VARCHAR,
    value VARCHAR,
    PRIMARY KEY (gse, gsm, "row")
);

-- Counts stay in Parquet (one file per series, see DESIGN notes); this table says where.
CREATE TABLE IF NOT EXISTS raw.count_files (
    gse VARCHAR PRIMARY KEY,
    parquet_path VARCHAR NOT NULL,      -- relative to the warehouse file's folder
    source_file VARCHAR NOT NULL,
    runs VARCHAR[] NOT NULL,            -- SRRs in the file, in column order
    n_runs INTEGER NOT NULL,
    n_genes INTEGER NOT NULL,
    n_unknown_genes INTEGER NOT NULL
);

-- Rows and files that could not be used, with the reason. Never silently dropped.
CREATE TABLE IF NOT EXISTS raw.rejected (
    source VARCHAR NOT NULL,
    stage VARCHAR NOT NULL,             -- ingest | groups | de | go | export | ...
    line BIGINT NOT NULL,               -- 0: the whole file
    reason VARCHAR NOT NULL,
    record VARCHAR,
    rejected_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (source, stage, line, reason)
);
