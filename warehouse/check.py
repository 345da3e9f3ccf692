"""`degae-tools check`: is the warehouse file whole, and do its tables keep their contracts?

Every column of every table is read, so DuckDB verifies the checksum of every block it stores;
a table that cannot be read whole is damaged. Blocks no table read touches (indexes, the
catalogue) are verified too: every block of the file is checked against the checksum DuckDB
stores in its first 8 bytes (see `bad_blocks`). The rows a full read finds are compared with the
table's row count and with `warehouse.fingerprint`'s, and the table contracts of
`sql/contracts.toml` are checked. A damaged DuckDB file cannot be repaired in place: the report
says which commands rebuild the damaged tables from the source folders.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np

from degae_tools.errors import WarehouseError
from warehouse.contracts import Violation, violations
from warehouse.fingerprint import fingerprint
from warehouse.handle import Warehouse

BASE_TABLES = (
    "SELECT schema_name || '.' || table_name FROM duckdb_tables() "
    "WHERE schema_name IN ('raw', 'core', 'ml') ORDER BY 1"
)
# The command that writes each table (the first prefix that matches).
WRITERS = (
    ("raw.", "degae-tools ingest"),
    ("core.de_", "degae-tools de"),
    ("core.contrast_keys", "degae-tools de"),
    ("core.go_runs", "degae-tools enrich"),
    ("core.go_enrichment", "degae-tools enrich"),
    ("core.collections", "degae-tools import-signatures / import-de (the imported files)"),
    ("core.signatures", "degae-tools import-signatures / import-de (the imported files)"),
    ("core.", "degae-tools ingest"),
    ("ml.trials", "degae-tools search"),
    ("ml.go_", "degae-tools predict"),
    ("ml.attribution", "degae-tools attribute"),
    ("ml.gene_attributions", "degae-tools attribute"),
    ("ml.term_genes", "degae-tools attribute"),
    ("ml.validation", "degae-tools attribute --validate"),
    ("ml.study_comparison", "degae-tools compare-study"),
    ("ml.similar", "degae-tools similar"),
    ("ml.embeddings", "degae-tools reduce"),
    ("ml.", "degae-tools train"),
)
# DuckDB's file: a main header and two database headers of 4 KiB, then blocks of `block_size`
# bytes, each starting with the 8-byte checksum of the rest (duckdb/src/common/checksum.cpp:
# 5381 XOR the product of every 64-bit word with 0xbf58476d1ce4e5b9, modulo 2^64).
HEADERS_BYTES = 3 * 4096
CHECKSUM_BYTES = 8
CHECKSUM_SEED = np.uint64(5381)
CHECKSUM_FACTOR = np.uint64(0xBF58476D1CE4E5B9)
BLOCKS_PER_READ = 64
PIPELINE = ("ingest", "de", "enrich", "import", "train", "search", "predict", "attribute", "reduce")


@dataclass(frozen=True)
class TableCheck:
    """One table read whole: its rows, or what stopped the read."""

    table: str
    rows: int | None
    problem: str | None = None


@dataclass(frozen=True)
class BadBlock:
    """A block whose checksum does not match, and what it holds."""

    location: int  # byte offset in the file
    holds: str  # a table's name, "the catalogue", or "an index or free space"

    def __str__(self) -> str:
        return f"the block at byte {self.location} ({self.holds}) fails its checksum"


@dataclass
class CheckReport:
    """What `check` found in one warehouse file."""

    path: Path
    tables: list[TableCheck] = field(default_factory=list)
    bad_blocks: list[BadBlock] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    source_folders: list[str] = field(default_factory=list)

    @property
    def damaged(self) -> list[TableCheck]:
        return [t for t in self.tables if t.problem]

    @property
    def ok(self) -> bool:
        return not self.damaged and not self.bad_blocks and not self.violations

    def rebuild(self) -> list[str]:
        """How to rebuild: a fresh warehouse from the source folders (ingest, de, enrich), then
        the commands that wrote the damaged tables beyond those, in pipeline order."""
        if not self.damaged and not self.bad_blocks:
            return []
        sources = " ".join(self.source_folders) or "SOURCE_FOLDER"
        fresh = self.path.with_name(f"{self.path.stem}.rebuilt{self.path.suffix}")
        commands = [f"degae-tools ingest {sources}", "degae-tools de", "degae-tools enrich"]
        needed = {writer(t.table) for t in self.damaged} - {"degae-tools ingest", *commands}
        commands += sorted(needed, key=_pipeline_order)
        return [f"{command} --db {fresh}" for command in commands]


def _pipeline_order(command: str) -> int:
    step = command.split()[1]
    return next((i for i, s in enumerate(PIPELINE) if step.startswith(s)), len(PIPELINE))


def writer(table: str) -> str:
    """The command that writes `table`."""
    return next(command for prefix, command in WRITERS if table.startswith(prefix))


def check_warehouse(wh: Warehouse) -> CheckReport:
    """Read every table whole, compare row counts, check the contracts."""
    report = CheckReport(wh.path)
    names = [row[0] for row in wh.rows(BASE_TABLES)]
    report.tables = [read_whole(wh, name) for name in names]
    report.bad_blocks = bad_blocks(wh, names)
    if not report.damaged:
        counted = {name: rows for name, (rows, _) in _fingerprint(wh).items()}
        report.tables = [_against(t, counted.get(t.table)) for t in report.tables]
    if not report.damaged:
        report.violations = violations(wh)
    report.source_folders = source_folders(wh)
    return report


def read_whole(wh: Warehouse, table: str) -> TableCheck:
    """Read every column of every row of `table` (names come from the catalogue)."""
    schema, _, name = table.partition(".")
    quoted = f'{schema}."{name}"'
    columns = [row[0] for row in wh.rows(f"SELECT * FROM (DESCRIBE {quoted})")]
    every = ", ".join(f'"{c}"' for c in columns)
    try:
        stored = wh.scalar(f"SELECT count(*) FROM {quoted}")
        read, _ = wh.one(f"SELECT count(*), sum(hash({every})::HUGEINT) FROM {quoted}")
    except (WarehouseError, duckdb.Error) as exc:
        wh.close()  # a failed read may leave the connection unusable
        return TableCheck(table, None, damage(exc))
    if read != stored:
        return TableCheck(table, read, f"a full read finds {read} rows, the table says {stored}")
    return TableCheck(table, read)


def bad_blocks(wh: Warehouse, tables: list[str]) -> list[BadBlock]:
    """Every block of the file whose stored checksum does not match its bytes, with what it
    holds: a table's data, the catalogue, or (neither) an index or free space. Reads the file
    `BLOCKS_PER_READ` blocks at a time."""
    try:
        block_size, free = wh.one("SELECT block_size, free_blocks FROM pragma_database_size()")
        owners = block_owners(wh, tables)
    except (WarehouseError, duckdb.Error):
        wh.close()
        return []  # the catalogue itself does not read: the table reads have said so
    other = "an index or free space" if free else "an index"
    bad = []
    with open(wh.path, "rb") as f:
        f.seek(HEADERS_BYTES)
        first = 0
        while chunk := f.read(block_size * BLOCKS_PER_READ):
            whole = len(chunk) // block_size
            for i in failing_checksums(chunk[: whole * block_size], block_size):
                block = first + i
                bad.append(BadBlock(HEADERS_BYTES + block * block_size, owners.get(block, other)))
            first += whole
    return bad


def failing_checksums(data: bytes, block_size: int) -> list[int]:
    """Indexes of the blocks in `data` whose first 8 bytes are not the checksum of the rest."""
    words = np.frombuffer(data, dtype="<u8").reshape(-1, block_size // CHECKSUM_BYTES)
    with np.errstate(over="ignore"):
        computed = np.bitwise_xor.reduce(words[:, 1:] * CHECKSUM_FACTOR, axis=1) ^ CHECKSUM_SEED
    return np.flatnonzero(computed != words[:, 0]).tolist()


def block_owners(wh: Warehouse, tables: list[str]) -> dict[int, str]:
    """Block ID -> what it holds: a table's column data, or the catalogue (metadata)."""
    owners = {
        row[0]: "the catalogue" for row in wh.rows("SELECT block_id FROM pragma_metadata_info()")
    }
    for table in tables:
        blocks = wh.rows(
            "SELECT DISTINCT block_id FROM pragma_storage_info($t) WHERE block_id >= 0",
            {"t": table},
        )
        owners |= {row[0]: table for row in blocks}
    return owners


def damage(exc: BaseException) -> str:
    """What stopped a table's read, in a few words (DuckDB's message, not degae's advice)."""
    text = str(exc.__cause__ or exc).splitlines()[0]
    lower = text.lower()
    if "could not read enough bytes" in lower:
        return "truncated: its blocks lie past the end of the file"
    if "checksum" in lower:
        where = text.rsplit(" in block at ", 1)[1] if " in block at " in text else "?"
        return f"corrupt block (checksum mismatch in the block at {where})"
    return text


def _fingerprint(wh: Warehouse) -> dict[str, tuple[int, int]]:
    with wh.session() as con:
        return fingerprint(con)


def _against(table: TableCheck, counted: int | None) -> TableCheck:
    if counted is None or counted == table.rows:
        return table
    return TableCheck(table.table, table.rows, f"the fingerprint counts {counted} rows")


def source_folders(wh: Warehouse) -> list[str]:
    """The folders the loaded files came from (where a rebuild reads), if that table reads."""
    try:
        paths = [row[0] for row in wh.rows("SELECT DISTINCT path FROM raw.source_files")]
    except (WarehouseError, duckdb.Error):
        wh.close()
        return []
    folders = sorted({str(Path(p).parent) for p in paths if p})
    if not folders:
        return []
    # One source folder holds sub-folders (dee2/, geo/, go/): name it, not them.
    common = os.path.commonpath(folders)
    return [common] if common not in ("", "/") else folders
