"""`degae-tools report`: one self-contained HTML file whose sections follow the data."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from bench.report_screenshot import (
    CHROMIUM,
    blankness,
    build_demo_warehouse,
    measure_overflow,
    screenshot,
)
from degae_tools import plots
from degae_tools.cli import main
from degae_tools.steps.report import (
    MIN_TEST_POSITIVES,
    Figures,
    HeldOut,
    latent_caption,
    latent_section,
    report_sections,
    write_report,
)
from tests.warehouse_fixtures import tiny_warehouse
from warehouse import Warehouse

ALL_SECTIONS = [
    "warehouse",
    "reduction",
    "latent",
    "models",
    "training",
    "search",
    "reconstruction",
    "go-prediction",
    "term-genes",
    "checks",
]
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium")


def report(db: Path, out: Path, figures_dir: Path | None = None) -> Path:
    with Warehouse.open(db) as wh:
        return write_report(wh, out, figures_dir=figures_dir)


@pytest.fixture(scope="module")
def full_report(tmp_path_factory) -> tuple[Path, Path]:
    """The report of a warehouse with rows behind every section, and its figures folder."""
    folder = tmp_path_factory.mktemp("report")
    db = build_demo_warehouse(folder / "demo.duckdb", n_contrasts=45, n_genes=120)
    return report(db, folder / "report.html", figures_dir=folder / "figures"), folder


def section_of(text: str, anchor: str) -> str:
    """One section of a report, its white space runs made single spaces (as a browser shows it)."""
    start = text.index(f'id="{anchor}"')
    end = text.find("<section", start)
    return " ".join(text[start : end if end > 0 else None].split())


def test_every_section_with_data_shows_an_image_or_a_table(full_report):
    sections = report_sections(full_report[0].read_text())
    assert list(sections) == ALL_SECTIONS
    assert [name for name, n in sections.items() if not (n["img"] or n["table"])] == []


def test_report_is_one_file_with_embedded_images(full_report):
    text = full_report[0].read_text()
    sources = re.findall(r'src="([^"]*)"', text)
    assert len(sources) >= 10
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r"<link|<script|https?://", text)


def test_warehouse_section_says_why_series_were_excluded(full_report):
    text = full_report[0].read_text()
    assert "no run passes DEE2 QC" in text
    assert "fewer than two groups" in text


def test_models_section_says_what_each_autoencoder_reads(full_report):
    text = full_report[0].read_text()
    models = text[text.index('id="models"') :][:20_000]
    assert "<th>reads</th>" in models
    assert "<td>log2FC</td>" in models or "<td>|log2FC|</td>" in models


def test_models_metrics_are_columns_not_a_raw_dict(full_report):
    models = section_of(full_report[0].read_text(), "models")
    assert "<th>test R²</th>" in models and "<th>PCA test R²</th>" in models
    assert '<td class="num">0.58</td>' in models
    assert "{" not in models and "autoencoder_test_r2" not in models
    predictors = models[models.index("GO predictors") :]
    assert "<th>latent head macro AUROC</th>" in predictors
    assert '<td>dense-demo.go</td><td class="date">' in predictors
    assert '<td class="num">0.81</td><td class="num">12</td><td class="num">0.77</td>' in predictors


def test_reduction_section_gives_the_first_two_pcs_figure(full_report):
    text = full_report[0].read_text()
    assert re.search(r"first two principal components explain <b>\d+\.\d%</b>", text)


def test_top_genes_are_named_with_their_go_term(full_report):
    text = full_report[0].read_text()
    section = text[text.index('id="term-genes"') :]
    assert "immune system process" in section
    assert re.search(r"<b>Gene\d+</b>", section)


def test_top_gene_cards_explain_top_k_and_a_gene_leading_many_terms(full_report):
    section = section_of(full_report[0].read_text(), "term-genes")
    assert "k = 20 genes with the largest attribution" in section
    assert "<th>top-20</th>" in section
    assert "<b>Gene7</b> is first for 3 of the 4 terms shown" in section
    assert "same latent code" in section


def test_figures_folder_gets_every_picture_as_png(full_report):
    report_path, folder = full_report
    pngs = list((folder / "figures").glob("*.png"))
    assert len(pngs) == report_path.read_text().count("<img")


def test_sections_without_data_are_left_out(tmp_path):
    db = tiny_warehouse(tmp_path / "w.duckdb", n_contrasts=6, n_genes=30)
    text = report(db, tmp_path / "r.html").read_text()
    assert list(report_sections(text)) == ["warehouse"]
    assert "Training" not in text


def test_an_empty_warehouse_says_what_to_run_first(tmp_path):
    Warehouse.open(tmp_path / "w.duckdb", write=True, create=True).close()
    text = report(tmp_path / "w.duckdb", tmp_path / "r.html").read_text()
    assert report_sections(text) == {"section-1": {"img": 0, "table": 0}}
    assert "degae-tools simulate" in text


def test_text_from_the_warehouse_is_escaped(tmp_path):
    db = tiny_warehouse(tmp_path / "w.duckdb", n_contrasts=6, n_genes=30)
    with Warehouse.open(db, write=True) as wh:
        wh.execute(
            "INSERT INTO ml.models (model_id, kind, config) VALUES ('<b>m</b>', 'dense', '{}')"
        )
    text = report(db, tmp_path / "r.html").read_text()
    assert "<td>&lt;b&gt;m&lt;/b&gt;</td>" in text and "<b>m</b>" not in text


def test_cli_writes_the_report(tmp_path):
    db = tiny_warehouse(tmp_path / "w.duckdb", n_contrasts=6, n_genes=30)
    out = tmp_path / "out" / "report.html"
    result = CliRunner().invoke(main, ["--quiet", "report", "--db", str(db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_study_comparison_puts_both_pipelines_side_by_side_with_their_notes(tmp_path):
    db = tiny_warehouse(tmp_path / "w.duckdb", n_contrasts=6, n_genes=30)
    measured = [
        ("study", "test_r2", 1, 0.07, 30.0, ""),
        ("degae", "test_r2", 1, 0.41, 20.0, ""),
        ("study", "contrasts", 0, 356.0, None, "random by contrast, seed 69"),
        ("degae", "contrasts", 0, 356.0, None, "by series, seed 69"),
    ]
    columns = ["pipeline", "metric", "layers", "value", "seconds", "note"]
    rows = pa.Table.from_pylist(
        [{"run_id": "r", **dict(zip(columns, m, strict=True))} for m in measured]
    )
    with Warehouse.open(db, write=True) as wh:
        wh.insert("ml.study_comparison", rows)
    section = section_of(report(db, tmp_path / "r.html").read_text(), "study-comparison")
    assert re.search(
        r"<td>contrasts</td><td>(</td>)?.*<td>test_r2</td><td class=\"num\">1</td>"
        r'<td class="num">0.07</td><td class="num">0.41</td>',
        section,
    )
    assert "<li>study contrasts: random by contrast, seed 69</li>" in section
    assert "<li>degae contrasts: by series, seed 69</li>" in section


# --- captions say what the measured figures say -------------------------------------------------


def test_latent_caption_claims_learned_structure_only_above_pca():
    below = latent_caption(HeldOut("test", autoencoder=0.04, pca=0.12))
    above = latent_caption(HeldOut("test", autoencoder=0.58, pca=0.45))
    assert "does not reconstruct held-out contrasts better than PCA" in below
    assert "R² 0.04 against 0.12" in below and "not as structure the autoencoder learned" in below
    assert "better than PCA (held-out (test) R² 0.58 against 0.45" in above
    assert "structure it learned" in above
    assert "lacks" in latent_caption(None) and "No held-out reconstruction" in latent_caption(None)


def test_latent_section_follows_the_reconstruction_table(full_report, tmp_path):
    db = shutil.copy(full_report[1] / "demo.duckdb", tmp_path / "below.duckdb")
    with Warehouse.open(db, write=True) as wh:
        wh.execute("UPDATE ml.reconstruction SET r2 = 0.04 WHERE method = 'autoencoder'")
        wh.execute("UPDATE ml.reconstruction SET r2 = 0.12 WHERE method = 'pca'")
        captions = [m.caption for m in latent_section(wh, Figures(None)).content.models]
    assert captions == [latent_caption(HeldOut("test", 0.04, 0.12))]
    above = section_of(full_report[0].read_text(), "latent")
    assert "reconstructs held-out contrasts better than PCA" in above and "0.58" in above


# --- GO prediction: chance lines and best terms -------------------------------------------------


def chance_lines(ax) -> list[float]:
    """x of the vertical lines drawn on a score panel."""
    return [line.get_xdata()[0] for line in ax.get_lines()]


def test_chance_line_is_drawn_on_auroc_only_unless_auprc_has_its_prevalence():
    scores = {"AUROC": {"latent_head": 0.8, "prior": 0.5}, "AUPRC": {"latent_head": 0.4}}
    fig = plots.plot_score_panels(scores, "m", {"AUROC": (0.5, "chance")})
    auroc, auprc = fig.axes[:2]
    assert chance_lines(auroc) == [0.5] and chance_lines(auprc) == []
    plt.close(fig)
    fig = plots.plot_score_panels(scores, "m", {"AUROC": (0.5, "c"), "AUPRC": (0.07, "p")})
    assert chance_lines(fig.axes[1]) == [0.07]
    plt.close(fig)


def test_go_section_draws_auprc_chance_at_the_priors_prevalence(full_report):
    section = section_of(full_report[0].read_text(), "go-prediction")
    prevalence = np.mean([3 + 2 * i for i in range(12)]) / 30
    assert f"on average {prevalence:.3g}" in section and "AUROC 0.5 is chance" in section


def test_best_predicted_terms_have_enough_test_positives_and_name_their_predictor(full_report):
    section = section_of(full_report[0].read_text(), "go-prediction")
    best = section[section.index("Best-predicted terms") :]
    rows = re.findall(r"<tr><td>dense-demo</td><td>(\w+)</td>(.*?)</tr>", best)
    predictors = [p for p, _ in rows]
    assert predictors[0] == "latent_head" and {"genes_ridge", "pca_logreg"} <= set(predictors)
    assert "prior" not in predictors
    test_positives = [int(re.findall(r'<td class="num">([\d,]+)</td>', r)[1]) for _, r in rows]
    assert min(test_positives) >= MIN_TEST_POSITIVES
    assert f"at least {MIN_TEST_POSITIVES} positive contrasts in the test split" in best


# --- figures: readable labels, distinct colours, labelled axes ---------------------------------


def test_grouped_bar_labels_do_not_overlap():
    groups = {
        f"dense-256x2-magnitude-{i:04d} · test": {"autoencoder": 0.4, "pca": 0.5} for i in range(6)
    }
    fig = plots.plot_grouped_bars(groups, "Held-out reconstruction", "R²")
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in fig.axes[0].get_yticklabels()]
    assert len(boxes) == 6
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    plt.close(fig)


def test_embedding_legend_never_repeats_a_colour():
    rng = np.random.default_rng(0)
    labels = [f"term {i % 12}" for i in range(600)] + [None] * 50
    fig = plots.plot_embedding(rng.normal(size=(650, 2)), labels, "t-SNE")
    handles = fig.axes[0].get_legend().legend_handles
    colours = [tuple(np.round(h.get_facecolor()[0], 3)) for h in handles]
    assert len(handles) == len(plots.PALETTE) + 1  # the shown terms, and "other / none"
    assert len(set(colours)) == len(colours)
    markers = {c.get_paths()[0].vertices.shape for c in fig.axes[0].collections}
    assert len(markers) > 2  # shapes differ too, not only colours
    plt.close(fig)


def test_training_plot_labels_the_learning_rate():
    history = [
        {"epoch": e, "loss": 1 / (e + 1), "val_loss": 1.1 / (e + 1), "learning_rate": 1e-3}
        for e in range(5)
    ]
    fig = plots.plot_history(history)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["training loss", "validation loss", "learning rate (right axis)"]
    assert fig.axes[1].get_ylabel() == "learning rate"
    plt.close(fig)


# --- in a browser ------------------------------------------------------------------------------


@needs_chromium
def test_headless_chromium_renders_a_non_blank_page(full_report):
    report_path, folder = full_report
    png = screenshot(report_path, folder / "shot.png", height=2000)
    assert blankness(png)["share_not_background"] > 0.05


@needs_chromium
@pytest.mark.parametrize("width", [1280, 1600])
def test_nothing_overflows_at_common_widths(full_report, width):
    overflow = measure_overflow(full_report[0], width)
    assert overflow.width == width and overflow.page_height > 2000
    assert overflow.problems() == []


@needs_chromium
def test_overflow_check_finds_a_table_wider_than_its_box(full_report, tmp_path):
    wide = tmp_path / "wide.html"
    cells = "".join(f'<td class="num">{10**12 + i:,}</td>' for i in range(30))
    text = full_report[0].read_text()
    start = text.index('id="models"')
    wide.write_text(text[:start] + text[start:].replace("</tr>", cells + "</tr>", 1))
    overflow = measure_overflow(wide, 1280)
    assert [t["section"] for t in overflow.tables] == ["models"]
    assert any("models: table" in line for line in overflow.problems())
