"""Render the report of a tiny warehouse with data for every section in headless Chromium.

Builds the warehouse (tiny_warehouse plus inclusion, model, search, prediction and attribution
rows), runs `reduce`, writes the report, and at 1280 and 1600 px wide measures horizontal
overflow (the page wider than the window, a table wider than its box, anything past its
section's edge) and takes a full-page screenshot. Fails when a section shows neither image nor
table, a screenshot is blank, or anything overflows. Writes bench/results/report_1280.png,
report_1600.png, report_screenshot.png (the 1280 px page at half size) and
report_screenshot.json; `python bench/report_screenshot.py [--keep DIR]`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from degae_tools.reduction import ReduceConfig  # noqa: E402
from degae_tools.steps import reduce  # noqa: E402
from degae_tools.steps.report import report_sections, write_report  # noqa: E402
from tests.warehouse_fixtures import tiny_warehouse  # noqa: E402
from warehouse import Warehouse  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
RESULTS = Path(__file__).resolve().parent / "results"
WIDTHS = (1280, 1600)
MAX_HEIGHT = 16_000  # Chromium's screenshots stop being reliable far beyond this
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
PREDICTORS = {"latent_head": 0.81, "pca_logreg": 0.72, "genes_ridge": 0.77, "prior": 0.5}
TOP_K = 20

# Runs in the page once it has loaded; writes what sticks out into <body data-overflow="...">.
MEASURE = """
<script>
addEventListener("load", () => {
  const doc = document.documentElement;
  const out = {viewport: innerWidth, page: doc.scrollWidth, height: doc.scrollHeight, tables: [],
               outside: []};
  const name = (el) => el.tagName.toLowerCase() + (el.className ? "." + el.className : "");
  for (const t of document.querySelectorAll("table")) {
    const box = t.parentElement;
    if (t.scrollWidth > box.clientWidth + 1 || box.scrollWidth > box.clientWidth + 1) {
      out.tables.push({section: t.closest("section")?.id || "", width: t.scrollWidth,
                       box: box.clientWidth,
                       columns: [...t.querySelectorAll("th")].map((th) => th.textContent)});
    }
  }
  for (const section of document.querySelectorAll("section")) {
    const right = section.getBoundingClientRect().right;
    for (const el of section.querySelectorAll("*")) {
      const r = el.getBoundingClientRect();
      if (r.width && r.right > right + 0.5) {
        out.outside.push({section: section.id, element: name(el), right: r.right, edge: right});
      }
    }
  }
  document.body.setAttribute("data-overflow", JSON.stringify(out));
});
</script>
"""


def build_demo_warehouse(path: Path, n_contrasts: int = 90, n_genes: int = 300) -> Path:
    """A warehouse with rows behind every report section: inclusion, DE/GO runs, a model with its
    history, latent code, reconstruction, GO metrics and term genes, a search and a reduce run."""
    tiny_warehouse(path, n_contrasts=n_contrasts, n_genes=n_genes, n_terms=len(TERM_NAMES))
    rng = np.random.default_rng(7)
    with Warehouse.open(path, write=True) as wh:
        with wh.transaction():
            _inclusion_rows(wh)
            wh.insert(
                "core.go_terms",
                _rows(
                    {"go_id": f"GO:{i:07d}", "name": name, "namespace": "biological_process"}
                    for i, name in enumerate(TERM_NAMES)
                ),
            )
            contrast_ids = [r[0] for r in wh.rows("SELECT contrast_id FROM core.contrasts")]
            wh.insert(
                "core.go_runs",
                _rows(
                    {"contrast_id": c, "status": "done", "source": "degae", "n_enriched": 3}
                    for c in contrast_ids
                ),
            )
            _model_rows(wh, contrast_ids, rng)
            _search_rows(wh, rng)
            _prediction_rows(wh, rng)
            _attribution_rows(wh, contrast_ids, rng, n_genes)
        reduce.run(wh, ReduceConfig(model=MODEL), path.parent / "reduce-figures")
    return path


def _rows(records) -> pa.Table:
    """An Arrow table of dicts (every dict has the first one's keys: they make the schema)."""
    return pa.Table.from_pylist(list(records))


def _inclusion_rows(wh: Warehouse) -> None:
    series = [r[0] for r in wh.rows("SELECT DISTINCT gse FROM core.contrasts ORDER BY gse")]
    wh.execute("UPDATE core.contrasts SET runs_a = ['SRR1', 'SRR2'], runs_b = ['SRR3', 'SRR4']")
    excluded = {
        "GSE9001": "no DEE2 runs",
        "GSE9002": "no run passes DEE2 QC",
        "GSE9003": "no run passes DEE2 QC",
        "GSE9004": "fewer than two groups",
    }
    all_series = series + list(excluded)
    wh.insert("raw.geo_series", _rows({"gse": g, "title": f"Series {g}"} for g in all_series))
    wh.insert(
        "raw.dee2_runs",
        _rows(
            {
                "srr": f"SRR{gse[3:]}{k}",
                "gse": gse,
                "qc_status": "FAIL" if excluded.get(gse) == "no run passes DEE2 QC" else "PASS",
            }
            for gse in all_series
            if excluded.get(gse) != "no DEE2 runs"
            for k in range(4)
        ),
    )
    wh.insert(
        "raw.count_files",
        _rows(
            {
                "gse": gse,
                "parquet_path": "counts.parquet",
                "source_file": "counts.tsv",
                "runs": [],
                "n_runs": 4,
                "n_genes": 300,
                "n_unknown_genes": 0,
            }
            for gse in all_series
        ),
    )
    wh.insert(
        "core.datasets",
        _rows(
            {
                "gse": gse,
                "species": "mmusculus",
                "title": f"Series {gse}",
                "n_groups": 1 if excluded.get(gse) == "fewer than two groups" else 2,
            }
            for gse in all_series
        ),
    )


def _model_rows(wh: Warehouse, contrast_ids: list[str], rng: np.random.Generator) -> None:
    config = {"layers": [64], "latent_dim": 8, "epochs": 30, "representation": "signed"}
    metrics = {
        "epochs_run": 30,
        "val_loss": 0.41,
        "autoencoder_test_r2": 0.58,
        "pca_test_r2": 0.45,
        "n_features": 300,
        "n_train": len(contrast_ids) * 2 // 3,
        "seconds": 12.5,
        "runtime": {"tensorflow": "2.x", "machine": "x86_64"},
    }
    wh.insert(
        "ml.models",
        _rows(
            [
                {
                    "model_id": MODEL,
                    "kind": "dense",
                    "config": json.dumps(config),
                    "metrics": json.dumps(metrics),
                },
                {
                    "model_id": f"{MODEL}.go",
                    "kind": "predictor",
                    "config": json.dumps({"min_positives": 10}),
                    "metrics": json.dumps(
                        {
                            name: {"macro_auroc": auroc, "n_terms_scored": len(TERM_NAMES)}
                            for name, auroc in PREDICTORS.items()
                        }
                    ),
                },
            ]
        ),
    )
    wh.insert(
        "ml.history",
        _rows(
            {
                "model_id": MODEL,
                "epoch": epoch,
                "loss": 0.35 + 0.65 * np.exp(-epoch / 6),
                "val_loss": 0.41 + 0.65 * np.exp(-epoch / 6),
                "learning_rate": 1e-3 if epoch < 20 else 5e-4,
                "seconds": 0.2,
            }
            for epoch in range(30)
        ),
    )
    wh.insert(
        "ml.embeddings",
        _rows(
            {
                "model_id": MODEL,
                "method": "latent",
                "contrast_id": c,
                "split": "train",
                "coords": rng.normal(size=8).tolist(),
            }
            for c in contrast_ids
        ),
    )
    wh.insert(
        "ml.reconstruction",
        _rows(
            {"model_id": MODEL, "method": m, "split": "test", "latent_dim": 8, "mse": e, "r2": r}
            for m, e, r in [("autoencoder", 0.42, 0.58), ("pca", 0.55, 0.45)]
        ),
    )
    wh.insert(
        "ml.validation",
        _rows(
            [
                {
                    "model_id": MODEL,
                    "check_name": "precision_at_k",
                    "method": "integrated_gradients",
                    "value": 0.4,
                    "n": 40,
                    "detail": json.dumps({"k": 50, "ground_truth": "perturbations.tsv"}),
                }
            ]
        ),
    )


def _search_rows(wh: Warehouse, rng: np.random.Generator) -> None:
    grid = [(n, k) for n in (32, 64, 128, 256) for k in (1, 2)]
    wh.insert(
        "ml.trials",
        _rows(
            {
                "search_id": "search-demo",
                "trial": trial,
                "fold": fold,
                "neurons": neurons,
                "layers": layers,
                "kind": "dense",
                "val_loss": 0.5 + 0.1 * layers - 0.03 * np.log2(neurons / 32) + 0.02 * rng.normal(),
                "seconds": 1.0,
            }
            for trial, (neurons, layers) in enumerate(grid)
            for fold in range(4)
        ),
    )


def _prediction_rows(wh: Warehouse, rng: np.random.Generator) -> None:
    """Per-term and macro/micro metrics of four predictors; terms have 3 to 25 test positives, so
    some fall under the report's minimum for best-predicted terms."""
    positives = [3 + 2 * i for i in range(len(TERM_NAMES))]
    prevalence = float(np.mean(positives)) / 30
    rows = []
    for predictor, auroc in PREDICTORS.items():
        for average in ("macro", "micro"):
            auprc = prevalence if predictor == "prior" else auroc - 0.3
            rows.append(
                {
                    "predictor": predictor,
                    "go_id": average,
                    "n_pos_train": None,
                    "n_pos_test": None,
                    "auroc": auroc,
                    "auprc": auprc,
                }
            )
        for i, n_pos in enumerate(positives):
            score = 0.5 if predictor == "prior" else min(auroc + 0.1 * rng.normal(), 0.99)
            rows.append(
                {
                    "predictor": predictor,
                    "go_id": f"GO:{i:07d}",
                    "n_pos_train": 3 * n_pos,
                    "n_pos_test": n_pos,
                    "auroc": 1.0 if n_pos < 5 and predictor != "prior" else score,
                    "auprc": n_pos / 30 if predictor == "prior" else 0.4,
                }
            )
    wh.insert("ml.go_metrics", _rows({"model_id": MODEL, **r} for r in rows))


def _attribution_rows(
    wh: Warehouse, contrast_ids: list[str], rng: np.random.Generator, n_genes: int
) -> None:
    """Top genes of four terms (one gene first in three of them, as attributions often have it)
    and the top-k genes of a few contrast-term pairs."""
    leader = 7
    term_genes = []
    for i in range(4):
        others = rng.choice([g for g in range(n_genes) if g != leader], size=9, replace=False)
        genes = [leader, *others] if i < 3 else [*others, leader]
        for rank, gene in enumerate(genes, start=1):
            term_genes.append(
                {
                    "go_id": f"GO:{i:07d}",
                    "gene_index": int(gene),
                    "mean_abs_attribution": 1.0 / rank,
                    "n_pairs": 12,
                    "n_top_k": max(0, 12 - 2 * rank),
                    "frac_top_k": max(0, 12 - 2 * rank) / 12,
                    "rank": rank,
                }
            )
    wh.insert("ml.term_genes", _rows({"model_id": MODEL, **r} for r in term_genes))
    wh.insert(
        "ml.gene_attributions",
        _rows(
            {
                "model_id": MODEL,
                "contrast_id": c,
                "go_id": "GO:0000000",
                "gene_index": int(gene),
                "attribution": 1.0 / rank,
                "rank": rank,
            }
            for c in contrast_ids[:3]
            for rank, gene in enumerate(rng.choice(n_genes, TOP_K, replace=False), start=1)
        ),
    )


def _chromium(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run headless Chromium (no network, a throwaway profile) with `args`."""
    profile = tempfile.mkdtemp(prefix="degae-chromium-")
    try:
        return subprocess.run(
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
                *args,
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(html_path: Path, png_path: Path, width: int = 1280, height: int = 4000) -> Path:
    """Render `html_path` in headless Chromium to `png_path`, `width` x `height` px."""
    _chromium(
        f"--screenshot={png_path}", f"--window-size={width},{height}", html_path.resolve().as_uri()
    )
    return png_path


@dataclass
class Overflow:
    """What sticks out horizontally at one window width (all lists empty: nothing)."""

    width: int
    page_width: int
    page_height: int
    tables: list[dict] = field(default_factory=list)
    outside: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.page_width <= self.width and not self.tables and not self.outside

    def problems(self) -> list[str]:
        """One line per thing that overflows."""
        lines = []
        if self.page_width > self.width:
            lines.append(f"page is {self.page_width} px wide in a {self.width} px window")
        lines += [
            f"{t['section']}: table {t['columns']} is {t['width']} px in a {t['box']} px box"
            for t in self.tables
        ]
        lines += [
            f"{o['section']}: {o['element']} ends at {o['right']:.0f} px, past the section's "
            f"edge at {o['edge']:.0f} px"
            for o in self.outside[:10]
        ]
        return lines


def measure_overflow(html_path: Path, width: int) -> Overflow:
    """Lay the page out in headless Chromium `width` px wide and report what overflows it.

    The report itself has no script: a copy with MEASURE appended is loaded, and its dumped DOM
    carries the measures."""
    text = html_path.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="degae-measure-") as folder:
        probe = Path(folder) / "probe.html"
        probe.write_text(text.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
        dom = _chromium(
            "--dump-dom",
            "--virtual-time-budget=10000",
            f"--window-size={width},1000",
            probe.as_uri(),
        ).stdout
    marker = 'data-overflow="'
    start = dom.index(marker) + len(marker)
    raw = dom[start : dom.index('"', start)]
    measured = json.loads(raw.replace("&quot;", '"').replace("&amp;", "&"))
    return Overflow(
        width=int(measured["viewport"]),
        page_width=int(measured["page"]),
        page_height=int(measured["height"]),
        tables=measured["tables"],
        outside=measured["outside"],
    )


def blankness(png_path: Path) -> dict[str, float]:
    """Share of pixels that differ from the most common colour, and the pixel standard deviation."""
    import matplotlib.image

    pixels = matplotlib.image.imread(str(png_path))[..., :3]
    rgb = (pixels.reshape(-1, 3) * 255).round().astype(np.uint32)
    codes = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]  # one number per colour: fast
    colours, counts = np.unique(codes, return_counts=True)
    differs = float((codes != colours[counts.argmax()]).mean())
    return {"share_not_background": differs, "pixel_std": float(pixels.std())}


def _half_size(png: Path, out: Path) -> None:
    import matplotlib.image

    pixels = matplotlib.image.imread(str(png))[..., :3]
    h, w = pixels.shape[0] // 2 * 2, pixels.shape[1] // 2 * 2
    pixels = pixels[:h, :w]
    small = (pixels[0::2, 0::2] + pixels[1::2, 0::2] + pixels[0::2, 1::2] + pixels[1::2, 1::2]) / 4
    matplotlib.image.imsave(str(out), small)


def main() -> None:
    """Build, reduce, report; measure and screenshot at each width; write results/."""
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
    with Warehouse.open(db) as wh:
        html_path = write_report(wh, folder / "report.html")
    t2 = time.perf_counter()
    sections = report_sections(html_path.read_text())
    empty = [name for name, found in sections.items() if not (found["img"] or found["table"])]
    RESULTS.mkdir(exist_ok=True)
    measures, looks = {}, {}
    for width in WIDTHS:
        measures[width] = measure_overflow(html_path, width)
        height = min(measures[width].page_height, MAX_HEIGHT)
        png = screenshot(html_path, RESULTS / f"report_{width}.png", width, height)
        looks[width] = blankness(png)
    t3 = time.perf_counter()
    _half_size(RESULTS / f"report_{WIDTHS[0]}.png", RESULTS / "report_screenshot.png")
    problems = [f"{w} px: {line}" for w, m in measures.items() for line in m.problems()]
    summary = {
        "seconds": {"warehouse_and_reduce": t1 - t0, "report": t2 - t1, "chromium": t3 - t2},
        "report_mb": html_path.stat().st_size / 1e6,
        "sections": list(sections),
        "overflow": {w: asdict(m) for w, m in measures.items()},
        "screenshots": looks,
    }
    (RESULTS / "report_screenshot.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"warehouse + reduce {t1 - t0:.1f} s, report {t2 - t1:.1f} s, chromium {t3 - t2:.1f} s")
    print(f"report {summary['report_mb']:.2f} MB, sections: {', '.join(sections)}")
    for width in WIDTHS:
        share = looks[width]["share_not_background"]
        print(f"{width} px: page {measures[width].page_width} px wide, {share:.1%} not background")
    blank = [w for w in WIDTHS if looks[w]["share_not_background"] < 0.05]
    if empty or blank or problems:
        sys.exit(f"FAILED: sections without image or table {empty}, blank at {blank}; {problems}")
    print("ok: every section shows an image or a table; no blank page; nothing overflows")


if __name__ == "__main__":
    main()
