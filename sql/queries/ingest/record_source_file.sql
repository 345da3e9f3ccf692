-- A file's load recorded, keyed on its content: one parameterised statement (ingest writes one
-- per file, and a generic upsert's catalogue check and Arrow registration cost more than it).
INSERT OR REPLACE INTO raw.source_files (path, kind, sha256, size_bytes, status, n_rows)
VALUES ($path, $kind, $sha256, $size_bytes, $status, $n_rows);
