"""`degae-tools report`: one self-contained HTML file whose sections follow the data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import warehouse
from bench.report_screenshot import CHROMIUM, blankness, build_demo_warehouse, screenshot
from degae_tools.cli import main
from degae_tools.report import report_sections, write_report
from tests.warehouse_fixtures import tiny_warehouse

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


@pytest.fixture(scope="module")
def full_report(tmp_path_factory) -> tuple[Path, Path]:
    """The report of a warehouse with rows behind every section, and its figures folder."""
    folder = tmp_path_factory.mktemp("report")
    db = build_demo_warehouse(folder / "demo.duckdb", n_contrasts=45, n_genes=120)
    return write_report(db, folder / "report.html", figures_dir=folder / "figures"), folder


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


def test_reduction_section_gives_the_first_two_pcs_figure(full_report):
    text = full_report[0].read_text()
    assert re.search(r"first two principal components explain <b>\d+\.\d%</b>", text)


def test_top_genes_are_named_with_their_go_term(full_report):
    text = full_report[0].read_text()
    section = text[text.index('id="term-genes"') :]
    assert "immune system process" in section
    assert re.search(r"<b>Gene\d+</b>", section)


def test_figures_folder_gets_every_picture_as_png(full_report):
    report, folder = full_report
    pngs = list((folder / "figures").glob("*.png"))
    assert len(pngs) == report.read_text().count("<img")


def test_sections_without_data_are_left_out(tmp_path):
    db = tiny_warehouse(tmp_path / "w.duckdb", n_contrasts=6, n_genes=30)
    text = write_report(db, tmp_path / "r.html").read_text()
    assert list(report_sections(text)) == ["warehouse"]
    assert "Training" not in text


def test_an_empty_warehouse_says_what_to_run_first(tmp_path):
    con = warehouse.connect(tmp_path / "w.duckdb", write=True)
    warehouse.migrate(con)
    con.close()
    text = write_report(tmp_path / "w.duckdb", tmp_path / "r.html").read_text()
    assert report_sections(text) == {"section-1": {"img": 0, "table": 0}}
    assert "degae-tools simulate" in text


def test_cli_writes_the_report(tmp_path):
    db = tiny_warehouse(tmp_path / "w.duckdb", n_contrasts=6, n_genes=30)
    out = tmp_path / "out" / "report.html"
    result = CliRunner().invoke(main, ["--quiet", "report", "--db", str(db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("<!DOCTYPE html>")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium")
def test_headless_chromium_renders_a_non_blank_page(full_report):
    report, folder = full_report
    png = screenshot(report, folder / "shot.png", height=2000)
    assert blankness(png)["share_not_background"] > 0.05
