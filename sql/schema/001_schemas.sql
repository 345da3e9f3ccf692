-- Three layers: raw (as read from files), core (cleaned, queryable results), ml (models and their outputs).
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS core;
CREATE SCHEMA IF NOT EXISTS ml;

CREATE TABLE IF NOT EXISTS main.schema_migrations (
    name VARCHAR PRIMARY KEY,
    sha256 VARCHAR NOT NULL,
    applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);
