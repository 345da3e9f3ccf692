INSERT OR REPLACE INTO raw.source_files (path, kind, sha256, size_bytes, status, n_rows)
VALUES (?, ?, ?, ?, ?, ?);
