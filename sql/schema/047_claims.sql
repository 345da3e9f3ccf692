-- Contrasts a running step holds. A `de` run writes its rows in a short transaction before it
-- fits anything, and deletes them with each contrast's results (or when it stops): a second run
-- meanwhile skips the contrasts a live process holds, and takes over those of a process that is
-- gone (killed). Another machine's process cannot be seen, so its rows hold until expires_at.
CREATE TABLE IF NOT EXISTS core.claims (
    stage VARCHAR NOT NULL,             -- de
    contrast_id VARCHAR NOT NULL,
    host VARCHAR NOT NULL,              -- the holder: its machine and process id
    pid INTEGER NOT NULL,
    claimed_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    expires_at TIMESTAMP NOT NULL,
    PRIMARY KEY (stage, contrast_id)
);
