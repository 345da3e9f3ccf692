"""The report's "Real signatures" section: models of an imported collection, read from the ml
tables the train, predict and attribute steps (and bench/real_signatures.py) write."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa

from degae_tools.steps.report import report_sections, write_report
from warehouse import Warehouse

GO_AUPRC = {"latent_head": 0.30, "pca_logreg": 0.25, "genes_ridge": 0.35, "prior": 0.05}


def model_rows(collection: str, kind: str, latent: int) -> dict:
    config = {"collection": collection, "value": "z", "kind": kind, "latent": latent}
    return {
        "model_id": f"{kind}-k{latent}",
        "kind": kind,
        "config": json.dumps(config),
        "metrics": "{}",
    }


def store(
    db: Path,
    r2: dict[int, tuple[float, float]],
    collection: str = "l1000",
    annotated: dict[str, float] | None = None,
) -> None:
    """One dense model per latent size with its (autoencoder, PCA) test R², GO macro rows and,
    given `annotated`, the top-20 annotation check of the first model."""
    models, recon, go = [], [], []
    for latent, (ae, pca) in r2.items():
        row = model_rows(collection, "dense", latent)
        models.append(row)
        mid = row["model_id"]
        for method, value in (("autoencoder", ae), ("pca", pca), ("nmf_magnitude", 0.5)):
            recon.append(
                {"model_id": mid, "method": method, "split": "test", "latent_dim": latent,
                 "mse": 1 - value, "r2": value}
            )  # fmt: skip
        for predictor, auprc in GO_AUPRC.items():
            for go_id, value in (("macro", auprc), ("GO:0000001", auprc)):
                go.append(
                    {"model_id": mid, "predictor": predictor, "go_id": go_id, "n_pos_train": 12,
                     "n_pos_test": 4, "auroc": 0.5 + auprc, "auprc": value}
                )  # fmt: skip
    with Warehouse.open(db, write=True, create=True) as wh:
        wh.insert("ml.models", pa.Table.from_pylist(models))
        wh.insert("ml.reconstruction", pa.Table.from_pylist(recon))
        wh.insert("ml.go_metrics", pa.Table.from_pylist(go))
        if annotated:
            checks = [
                {"model_id": models[0]["model_id"], "check_name": "annotated@20", "method": m,
                 "value": v, "n": 40, "detail": "test"}
                for m, v in annotated.items()
            ]  # fmt: skip
            wh.insert("ml.validation", pa.Table.from_pylist(checks))


def section_text(db: Path, out: Path) -> str:
    with Warehouse.open(db) as wh:
        html = write_report(wh, out).read_text()
    match = re.search(r'<section id="real-signatures".*?</section>', html, re.S)
    assert match, "no Real signatures section"
    return match.group(0)


def test_section_shows_r2_by_latent_go_and_annotation_with_measured_captions(tmp_path):
    db = tmp_path / "w.duckdb"
    shares = {"ig": 0.31, "abs_z": 0.22, "ig_random_weights": 0.08, "ig_same_pairs": 0.30,
              "random_genes": 0.05}  # fmt: skip
    store(db, {4: (0.44, 0.35), 8: (0.51, 0.47), 64: (0.69, 0.71)}, annotated=shares)
    text = section_text(db, tmp_path / "r.html")
    assert report_sections(Path(tmp_path / "r.html").read_text())["real-signatures"]["table"] == 4
    assert "Collection l1000" in text
    assert "better than PCA of the same size at latent 4, 8" in text
    assert "k = 4, dense 0.440 against PCA 0.350" in text
    assert "PCA is as good or better at latent 64" in text
    assert "NMF (|z|)" in text
    # GO: the head (0.30) beats PCA-logreg (0.25) but ridge (0.35) is the highest.
    assert "matches or beats PCA-logreg at latent 4, 8, 64" in text
    assert "(closest: k = 4, dense head 0.300 against PCA-logreg 0.250)" in text
    assert "ridge (genes) at latent" in text
    assert "31.0% of the top 20 genes" in text and "above the top 20 by |z| (22.0%)" in text
    assert "(3.8×)" in text


def test_caption_never_says_the_autoencoder_learned_more_when_pca_wins(tmp_path):
    db = tmp_path / "w.duckdb"
    store(db, {8: (0.40, 0.47), 32: (0.60, 0.65)})
    text = section_text(db, tmp_path / "r.html")
    assert "No autoencoder reconstructs held-out signatures better than PCA" in text
    assert "hold structure PCA lacks" not in text.replace("not as structure PCA lacks", "")
    assert "annotated to that term" not in text  # no attribution check stored: no caption


def test_section_is_left_out_without_models_of_an_imported_collection(tmp_path):
    db = tmp_path / "w.duckdb"
    store(db, {8: (0.50, 0.47)}, collection="compendium")
    with Warehouse.open(db) as wh:
        html = write_report(wh, tmp_path / "r.html").read_text()
    assert "real-signatures" not in report_sections(html)


def test_collection_names_are_escaped(tmp_path):
    db = tmp_path / "w.duckdb"
    store(db, {8: (0.50, 0.47)}, collection="<b>x</b>")
    text = section_text(db, tmp_path / "r.html")
    assert "Collection &lt;b&gt;x&lt;/b&gt;" in text and "<b>x</b>" not in text
