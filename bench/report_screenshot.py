"""Render the report of a tiny warehouse with data for every section in headless Chromium.

Builds the warehouse (tiny_warehouse plus inclusion, model, search, prediction and attribution
rows), runs `reduce`, writes the report, takes a 1280 px wide screenshot and checks that it is not
blank and that every section shows an image or a table. Writes bench/results/report_screenshot.png
and prints the timings; `python bench/report_screenshot.py [--keep DIR]`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import warehouse  # noqa: E402
from degae_tools.reduce import ReduceConfig, reduce  # noqa: E402
from degae_tools.report import report_sections, write_report  # noqa: E402
from tests.warehouse_fixtures import tiny_warehouse  # noqa: E402
from warehouse.connect import transaction  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
RESULTS = Path(__file__).resolve().parent / "results"
TERM_NAMES = [
    "immune system process",
    "response to virus",
    "cell cycle",
    "lipid metabolic process",
    "angiogenesis",
    "neuron differentiation",
    "inflammatory response",
    "mitochondrial translation",
    "extracellular matrix organization",
    "response to hypoxia",
    "DNA repair",
    "muscle contraction",
]
MODEL = "dense-demo"


def build_demo_warehouse(path: Path, n_contrasts: int = 90, n_genes: int = 300) -> Path:
    """A warehouse with rows behind every report section: inclusion, DE/GO runs, a model with its
    history, latent code, reconstruction, GO metrics and term genes, a search and a reduce run."""
    tiny_warehouse(path, n_contrasts=n_contrasts, n_genes=n_genes, n_terms=len(TERM_NAMES))
    rng = np.random.default_rng(7)
    con = warehouse.connect(path, write=True)
    try:
        with transaction(con):
            _inclusion_rows(con)
            for i, name in enumerate(TERM_NAMES):
                con.execute(
                    "INSERT INTO core.go_terms (go_id, name, namespace) VALUES (?, ?, ?)",
                    [f"GO:{i:07d}", name, "biological_process"],
                )
            contrast_ids = [
                r[0] for r in con.execute("SELECT contrast_id FROM core.contrasts").fetchall()
            ]
            for cid in contrast_ids:
                con.execute(
                    "INSERT INTO core.go_runs (contrast_id, status, source, n_enriched) "
                    "VALUES (?, 'done', 'degae', 3)",
                    [cid],
                )
            _model_rows(con, contrast_ids, rng)
    finally:
        con.close()
    reduce(path, ReduceConfig(model=MODEL), path.parent / "reduce-figures")
    return path


def _inclusion_rows(con) -> None:
    series = [r[0] for r in con.execute("SELECT DISTINCT gse FROM core.contrasts").fetchall()]
    con.execute("UPDATE core.contrasts SET runs_a = ['SRR1', 'SRR2'], runs_b = ['SRR3', 'SRR4']")
    excluded = {
        "GSE9001": "no DEE2 runs",
        "GSE9002": "no run passes DEE2 QC",
        "GSE9003": "no run passes DEE2 QC",
        "GSE9004": "fewer than two groups",
    }
    for gse in series + list(excluded):
        con.execute("INSERT INTO raw.geo_series (gse, title) VALUES (?, ?)", [gse, f"Series {gse}"])
        reason = excluded.get(gse)
        if reason != "no DEE2 runs":
            status = "FAIL" if reason == "no run passes DEE2 QC" else "PASS"
            for k in range(4):
                con.execute(
                    "INSERT INTO raw.dee2_runs (srr, gse, qc_status) VALUES (?, ?, ?)",
                    [f"SRR{gse[3:]}{k}", gse, status],
                )
        con.execute(
            "INSERT INTO raw.count_files (gse, parquet_path, source_file, runs, n_runs, n_genes, "
            "n_unknown_genes) VALUES (?, 'counts.parquet', 'counts.tsv', [], 4, 300, 0)",
            [gse],
        )
        con.execute(
            "INSERT INTO core.datasets (gse, species, title, n_groups) "
            "VALUES (?, 'mmusculus', ?, ?)",
            [gse, f"Series {gse}", 1 if reason == "fewer than two groups" else 2],
        )


def _model_rows(con, contrast_ids: list[str], rng: np.random.Generator) -> None:
    config = json.dumps({"layers": [64], "latent_dim": 8, "epochs": 30})
    metrics = json.dumps({"val_mse": 0.41, "test_r2": 0.58})
    con.execute(
        "INSERT INTO ml.models (model_id, kind, config, metrics) VALUES (?, 'dense', ?, ?)",
        [MODEL, config, metrics],
    )
    for epoch in range(30):
        loss = 0.35 + 0.65 * np.exp(-epoch / 6)
        con.execute(
            "INSERT INTO ml.history (model_id, epoch, loss, val_loss, learning_rate, seconds) "
            "VALUES (?, ?, ?, ?, ?, 0.2)",
            [MODEL, epoch, loss, loss + 0.06, 1e-3 if epoch < 20 else 5e-4],
        )
    for trial, (neurons, layers) in enumerate([(n, k) for n in (32, 64, 128, 256) for k in (1, 2)]):
        for fold in range(4):
            loss = 0.5 + 0.1 * layers - 0.03 * np.log2(neurons / 32) + 0.02 * rng.normal()
            con.execute(
                "INSERT INTO ml.trials (search_id, trial, fold, neurons, layers, kind, val_loss, "
                "seconds) VALUES ('search-demo', ?, ?, ?, ?, 'dense', ?, 1.0)",
                [trial, fold, neurons, layers, loss],
            )
    for cid in contrast_ids:
        con.execute(
            "INSERT INTO ml.embeddings VALUES (?, 'latent', ?, 'train', ?)",
            [MODEL, cid, rng.normal(size=8).tolist()],
        )
    for method, mse, r2 in [("autoencoder", 0.42, 0.58), ("pca", 0.55, 0.45)]:
        con.execute(
            "INSERT INTO ml.reconstruction VALUES (?, ?, 'test', 8, ?, ?)", [MODEL, method, mse, r2]
        )
    for predictor, auroc in [("latent_head", 0.81), ("pca_logreg", 0.72), ("prior", 0.5)]:
        for average in ("macro", "micro"):
            con.execute(
                "INSERT INTO ml.go_metrics VALUES (?, ?, ?, NULL, NULL, ?, ?)",
                [MODEL, predictor, average, auroc, auroc - 0.3],
            )
        for i in range(len(TERM_NAMES)):
            con.execute(
                "INSERT INTO ml.go_metrics VALUES (?, ?, ?, 20, 6, ?, ?)",
                [MODEL, predictor, f"GO:{i:07d}", min(auroc + 0.1 * rng.normal(), 0.99), 0.4],
            )
    for i in range(4):
        for rank, gene in enumerate(rng.choice(300, size=10, replace=False), start=1):
            con.execute(
                "INSERT INTO ml.term_genes VALUES (?, ?, ?, ?, 12, ?, ?, ?)",
                [MODEL, f"GO:{i:07d}", int(gene), 1.0 / rank, 12 - rank, (12 - rank) / 12, rank],
            )
    con.execute(
        "INSERT INTO ml.validation VALUES (?, 'precision_at_k', 'integrated_gradients', 0.4, 40, "
        "'{\"k\": 50}')",
        [MODEL],
    )


def screenshot(html_path: Path, png_path: Path, width: int = 1280, height: int = 4000) -> Path:
    """Render `html_path` in headless Chromium to `png_path` (no network, a throwaway profile)."""
    profile = tempfile.mkdtemp(prefix="degae-chromium-")
    try:
        subprocess.run(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--screenshot={png_path}",
                f"--window-size={width},{height}",
                html_path.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return png_path


def blankness(png_path: Path) -> dict[str, float]:
    """Share of pixels that differ from the most common colour, and the pixel standard deviation."""
    import matplotlib.image

    pixels = matplotlib.image.imread(str(png_path))[..., :3]
    flat = (pixels.reshape(-1, 3) * 255).round().astype(np.uint8)
    colours, counts = np.unique(flat, axis=0, return_counts=True)
    background = colours[counts.argmax()]
    differs = float((flat != background).any(axis=1).mean())
    return {"share_not_background": differs, "pixel_std": float(pixels.std())}


def _half_size(png: Path, out: Path) -> None:
    import matplotlib.image

    pixels = matplotlib.image.imread(str(png))[..., :3]
    small = (pixels[0::2, 0::2] + pixels[1::2, 0::2] + pixels[0::2, 1::2] + pixels[1::2, 1::2]) / 4
    matplotlib.image.imsave(str(out), small)


def main() -> None:
    """Build, reduce, report, screenshot, check; print timings and write the PNG to results/."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", type=Path, help="Keep the warehouse and report in this folder.")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="degae-report-"))
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "demo.duckdb"
    db.unlink(missing_ok=True)
    t0 = time.perf_counter()
    build_demo_warehouse(db)
    t1 = time.perf_counter()
    html_path = write_report(db, folder / "report.html")
    t2 = time.perf_counter()
    sections = report_sections(html_path.read_text())
    empty = [name for name, found in sections.items() if not (found["img"] or found["table"])]
    png = screenshot(html_path, folder / "report.png")
    t3 = time.perf_counter()
    looks = blankness(png)
    RESULTS.mkdir(exist_ok=True)
    _half_size(png, RESULTS / "report_screenshot.png")
    print(f"warehouse + reduce {t1 - t0:.1f} s, report {t2 - t1:.1f} s, chromium {t3 - t2:.1f} s")
    print(f"report {html_path.stat().st_size / 1e6:.2f} MB, sections: {', '.join(sections)}")
    print(f"screenshot: {looks['share_not_background']:.1%} non-background pixels")
    if empty or looks["share_not_background"] < 0.05:
        sys.exit(f"FAILED: sections without image or table {empty}, screenshot {looks}")
    print("ok: every section shows an image or a table; the screenshot is not blank")


if __name__ == "__main__":
    main()
