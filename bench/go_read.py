"""GO enrichment's read of DE rows as the warehouse grows: by contrast ID through the
core.de_results view (as the go step read them before) and by contrast key from core.de_values
(as it reads them now, sql/queries/go/de_significance.sql), beside DuckDB's plain scan of the same
rows (the limit: a `BETWEEN` on the key, no joins, no order).

    python bench/go_read.py [--contrasts 500,2000,8000] [--genes 20000] [--chunk 200]

For each size a warehouse is made with `init` and filled in SQL: every contrast's rows together,
sorted by p-value (as steps/runs.py: write_de_results writes them). Keys are given in the order a
parallel `de` writes contrasts, which is not their ID order: here contrast i gets key
(i * 7919 mod n) + 1, so a chunk of IDs in ID order is spread over the table. Each query reads the
same `--chunk` contrasts three times; the median wall time per contrast is reported, with the
share of row groups each scanned (EXPLAIN ANALYZE). Writes bench/results/go_read.json.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from warehouse import Query, Warehouse  # noqa: E402

BY_KEY = Query("go/de_significance")
# The go step's query before it read by key: the same columns, by ID through the view.
BY_ID = """
SELECT r.contrast_id, r.gene_index, r.adj_p_value,
       CASE c.score WHEN 'z' THEN r.z WHEN 't' THEN r.t WHEN 'log_fc' THEN r.log_fc END AS score,
       s.contrast_id IS NOT NULL AS signature
FROM core.de_results AS r
LEFT JOIN core.signatures AS s ON s.contrast_id = r.contrast_id
LEFT JOIN core.collections AS c ON c.collection = s.collection
WHERE r.contrast_id IN (SELECT unnest($contrast_ids::VARCHAR[]))
ORDER BY r.contrast_id, r.gene_index
"""
PLAIN = """
SELECT contrast_key, gene_index, adj_p_value FROM core.de_values
WHERE contrast_key BETWEEN $first AND $last
"""
STRIDE = 7919


def contrast_id(i: int) -> str:
    return f"GSE{i:07d}:treated-vs-control"


def build(db: Path, n: int, genes: int) -> None:
    with Warehouse.open(db, write=True, create=True) as wh:
        wh.migrate()
        wh.execute(
            f"INSERT INTO core.contrast_keys SELECT ((i * {STRIDE}) % {n}) + 1, "
            f"'GSE' || lpad(i::VARCHAR, 7, '0') || ':treated-vs-control' FROM range({n}) t(i)"
        )
        wh.execute(
            "INSERT INTO core.de_values (contrast_key, gene_index, log_fc, ave_expr, t, p_value, "
            "adj_p_value, b, z) "
            "SELECT k, g, random(), random(), random(), p, p, random(), random() "
            f"FROM (SELECT k, g, random() AS p FROM range(1, {n} + 1) a(k), range({genes}) b(g)) "
            "ORDER BY k, p"
        )


def timed(wh: Warehouse, query, params: dict) -> tuple[float, int]:
    times, rows = [], 0
    for _ in range(3):
        started = time.perf_counter()
        rows = wh.frame(query, params).height
        times.append(time.perf_counter() - started)
    return statistics.median(times), rows


def row_groups(wh: Warehouse, query, params: dict) -> str:
    text = str(query)
    for name, value in params.items():
        literal = "[" + ",".join(repr(v) for v in value) + "]" if isinstance(value, list) else value
        text = re.sub(rf"\${name}\b(::\w+\[\])?", str(literal), text)
    plan = wh.rows("EXPLAIN ANALYZE " + text)[0][1]
    found = re.findall(r"Row Groups Scanned: (\d+) / (\d+)", plan)
    return f"{found[0][0]}/{found[0][1]}" if found else "?"


def one_size(folder: Path, n: int, genes: int, chunk: int) -> dict:
    db = folder / f"w{n}.duckdb"
    started = time.perf_counter()
    build(db, n, genes)
    build_s = time.perf_counter() - started
    ids = [contrast_id(i) for i in range(n // 2, n // 2 + chunk)]
    with Warehouse.open(db) as wh:
        # The key chunk the step reads now: `chunk` consecutive keys.
        now = list(range(n // 2, n // 2 + chunk))
        by_key = {"keys": now, "first": now[0], "last": now[-1]}
        plain = {"first": now[0], "last": now[-1]}
        result = {"contrasts": n, "genes": genes, "rows": n * genes, "build_s": round(build_s, 1)}
        for name, query, params in (
            ("by_id_through_the_view", BY_ID, {"contrast_ids": ids}),
            ("by_key", BY_KEY, by_key),
            ("duckdb_plain_scan", PLAIN, plain),
        ):
            seconds, rows = timed(wh, query, params)
            result[name] = {
                "ms_per_contrast": round(1000 * seconds / chunk, 3),
                "rows": rows,
                "row_groups_scanned": row_groups(wh, query, params),
            }
    db.unlink()
    plain_ms = result["duckdb_plain_scan"]["ms_per_contrast"]
    for name in ("by_id_through_the_view", "by_key"):
        result[name]["x_plain_scan"] = round(result[name]["ms_per_contrast"] / plain_ms, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contrasts", default="500,2000,8000")
    parser.add_argument("--genes", type=int, default=20000)
    parser.add_argument("--chunk", type=int, default=200)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "go_read.json")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="degae-go-read-"))
    try:
        sizes = [
            one_size(folder, int(n), args.genes, args.chunk) for n in args.contrasts.split(",")
        ]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    for s in sizes:
        print(
            f"{s['contrasts']:>6} contrasts: by ID {s['by_id_through_the_view']['ms_per_contrast']}"
            f" ms/contrast ({s['by_id_through_the_view']['row_groups_scanned']} row groups, "
            f"{s['by_id_through_the_view']['x_plain_scan']}x plain scan), by key "
            f"{s['by_key']['ms_per_contrast']} ({s['by_key']['row_groups_scanned']}, "
            f"{s['by_key']['x_plain_scan']}x), plain {s['duckdb_plain_scan']['ms_per_contrast']}"
        )
    record = {
        "benchmark": "the go step's read of one chunk of DE rows as the warehouse grows: by ID "
        "through core.de_results (before) and by key from core.de_values (now), beside DuckDB's "
        "plain BETWEEN scan of the same rows",
        "chunk": args.chunk,
        "sizes": sizes,
    }
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
