"""The reference study's pipeline and degae's defaults on one compendium, side by side.

Two warehouses under one folder (`study.duckdb`, `degae.duckdb`), each built, fitted and scored by
its own recipe; one table of held-out reconstruction, GO prediction and wall time per stage,
stored in `ml.study_comparison` of the degae warehouse.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

import warehouse
from degae_tools import console
from degae_tools.enrichment import EnrichmentConfig
from degae_tools.errors import DegaeError, ModelError
from degae_tools.limma import DEConfig
from degae_tools.models import AutoencoderConfig
from degae_tools.steps import de as de_step
from degae_tools.steps import go as go_step
from degae_tools.study import StudyPreset, train_study, write_study_split
from flows.ingest import ingest
from warehouse.connect import transaction
from warehouse.migrate import read_query

PIPELINES = ("study", "degae")
METRIC_ORDER = (
    "contrasts",
    "genes_modelled",
    "test_mse",
    "test_r2",
    "best_val_mse",
    "epochs_run",
    "go_macro_auroc",
    "go_macro_auprc",
    "go_terms_scored",
    "ingest",
    "de",
    "go",
)


@dataclass(frozen=True)
class CompareConfig:
    """What `compare-study` trains: the layer counts, epochs and first-layer width of both
    pipelines' autoencoders (the study's: 1 layer, 2,000 units, 50 epochs)."""

    layers: tuple[int, ...] = (1, 2, 4, 10)
    epochs: int = 50
    neurons: int = 2000
    note: str = ""
    predict: bool = True
    min_positives: int = 10
    run_id: str | None = None


@dataclass
class Comparison:
    """The rows of one comparison run and where its two warehouses are."""

    run_id: str
    study_db: Path
    degae_db: Path
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        pipeline: str,
        metric: str,
        value: float | None,
        layers: int = 0,
        seconds: float | None = None,
        note: str = "",
    ) -> None:
        """One measured figure of one pipeline."""
        self.rows.append(
            {
                "run_id": self.run_id,
                "pipeline": pipeline,
                "metric": metric,
                "layers": layers,
                "value": None if value is None else float(value),
                "seconds": seconds,
                "note": note,
            }
        )

    def value(self, pipeline: str, metric: str, layers: int = 0) -> float | None:
        """A stored figure, or None."""
        for r in self.rows:
            if (r["pipeline"], r["metric"], r["layers"]) == (pipeline, metric, layers):
                return r["value"]
        return None

    def table(self) -> tuple[list[str], list[list[Any]]]:
        """(columns, rows): one row per (metric, layers), the two pipelines side by side."""
        cells: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
        for r in self.rows:
            cells.setdefault((r["metric"], r["layers"]), {})[r["pipeline"]] = r
        rank = {m: i for i, m in enumerate(METRIC_ORDER)}
        columns = ["metric", "layers", "study", "degae", "study s", "degae s"]
        out = []
        for (metric, layers), by in sorted(
            cells.items(), key=lambda kv: (rank.get(kv[0][0], 99), kv[0][1])
        ):
            study, degae = by.get("study", {}), by.get("degae", {})
            out.append(
                [
                    metric,
                    layers or "",
                    study.get("value"),
                    degae.get("value"),
                    study.get("seconds"),
                    degae.get("seconds"),
                ]
            )
        return columns, out

    def notes(self) -> list[str]:
        """'pipeline metric: note' for every row with a note."""
        lines = []
        for r in self.rows:
            if r["note"]:
                where = f" ({r['layers']} layers)" if r["layers"] else ""
                lines.append(f"{r['pipeline']} {r['metric']}{where}: {r['note']}")
        return lines


def _timed(step: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = step()
    return result, time.perf_counter() - started


def build_warehouse(source_dir: Path, db: Path, pipeline: str, out: Comparison) -> None:
    """Ingest, limma and GO enrichment of `source_dir` into `db` by one pipeline's recipe."""
    preset = StudyPreset()
    mode = preset.group_mode if pipeline == "study" else "degae"
    de_config = preset.de_config() if pipeline == "study" else None
    go_config = preset.enrichment_config() if pipeline == "study" else None
    summary, seconds = _timed(lambda: ingest(source_dir, db, mode=mode))
    out.add(pipeline, "ingest", summary.contrasts, seconds=seconds, note=f"groups: {mode}")
    with warehouse.Warehouse.open(db, write=True) as wh:
        de, seconds = _timed(lambda: de_step.run(wh, de_config or DEConfig()))
    de_note = "limma on raw counts" if de_config else "limma on log2-CPM"
    out.add(pipeline, "de", de.done, seconds=seconds, note=de_note)
    with warehouse.Warehouse.open(db, write=True) as wh:
        go, seconds = _timed(lambda: go_step.run(wh, go_config or EnrichmentConfig()))
    go_note = "FWER over or under < 0.05" if go_config else "FWER over < 0.05"
    out.add(pipeline, "go", go.done, seconds=seconds, note=f"{go_note}; value: contrasts")


def _train(pipeline: str, db: Path, layers: int, config: CompareConfig, model_dir: Path):
    """(metrics, history, model_dir) of one autoencoder of one pipeline."""
    if pipeline == "study":
        shape = {"layers": layers, "epochs": config.epochs, "neurons": config.neurons}
        model = train_study(db, StudyPreset(), model_dir, **shape)
        return model.metrics, model.history
    from degae_tools.train import train

    ae = AutoencoderConfig(neurons=config.neurons, layers=layers, epochs=config.epochs)
    result = train(db, ae, model_dir=model_dir)
    return result.metrics, result.history


def _predict(pipeline: str, db: Path, model_dir: Path, config: CompareConfig, out: Comparison):
    from degae_tools.predict import PredictConfig, fit_predictor

    preset = StudyPreset()
    predict_config = (
        PredictConfig(
            split_name=preset.split_name,
            label_column=preset.label_column,
            threshold=preset.label_threshold,
            min_positives=config.min_positives,
        )
        if pipeline == "study"
        else PredictConfig(split_name="degae", min_positives=config.min_positives)
    )
    layers = config.layers[0]
    try:
        result, seconds = _timed(lambda: fit_predictor(db, model_dir, predict_config))
    except ModelError as exc:
        out.add(pipeline, "go_macro_auroc", None, layers, note=str(exc))
        return
    head = result.summary.get("latent_head", {})
    labels = "FWER over or under" if pipeline == "study" else "FWER over"
    note = f"latent head, {len(result.go_ids)} terms ({labels} < 0.05)"
    out.add(pipeline, "go_macro_auroc", head.get("macro_auroc"), layers, seconds, note)
    out.add(pipeline, "go_macro_auprc", head.get("macro_auprc"), layers, seconds)
    out.add(pipeline, "go_terms_scored", head.get("n_terms_scored"), layers)


def compare_study(
    source_dir: Path, work_dir: Path, config: CompareConfig = CompareConfig()
) -> Comparison:
    """Run the study's pipeline and degae's defaults on `source_dir`; store and return the table."""
    source_dir, work_dir = Path(source_dir), Path(work_dir)
    if not config.layers or min(config.layers) < 1:
        raise DegaeError(f"--layers must be positive layer counts, got {config.layers}")
    work_dir.mkdir(parents=True, exist_ok=True)
    run_id = config.run_id or datetime.now(UTC).strftime("compare-%Y%m%dT%H%M%SZ")
    out = Comparison(run_id, work_dir / "study.duckdb", work_dir / "degae.duckdb")
    for pipeline in PIPELINES:
        db = out.study_db if pipeline == "study" else out.degae_db
        console.say(f"{pipeline}: ingest, limma, GO enrichment")
        build_warehouse(source_dir, db, pipeline, out)
        if pipeline == "study":
            sizes = write_study_split(db)
            split_note = "random by contrast, seed 69"
        else:
            con = warehouse.connect(db, write=True)
            try:
                from warehouse.export import ensure_split, split_contrasts

                ensure_split(con, "degae")
                rows = split_contrasts(con, "degae", ("train", "validation", "test"))
            finally:
                con.close()
            sizes = {s: sum(r[2] == s for r in rows) for s in ("train", "validation", "test")}
            split_note = "by series, seed 69"
        shares = "/".join(str(sizes[s]) for s in ("train", "validation", "test"))
        out.add(pipeline, "contrasts", sum(sizes.values()), note=f"{shares} ({split_note})")
        for layers in config.layers:
            console.say(f"{pipeline}: {layers}-layer autoencoder, {config.epochs} epochs")
            model_dir = work_dir / "models" / f"{pipeline}-{layers}"
            started = time.perf_counter()
            metrics, history = _train(pipeline, db, layers, config, model_dir)
            seconds = time.perf_counter() - started
            if layers == config.layers[0]:
                n_features = metrics.get("n_features")
                note = (
                    f"of {metrics.get('n_genes_in_every_series')} in every series"
                    if pipeline == "study"
                    else "all genes, missing log2FC = 0"
                )
                out.add(pipeline, "genes_modelled", n_features, note=note)
            val = [h["val_loss"] for h in history if not math.isnan(h["val_loss"])]
            out.add(pipeline, "test_mse", metrics.get("autoencoder_test_mse"), layers, seconds)
            out.add(pipeline, "test_r2", metrics.get("autoencoder_test_r2"), layers)
            out.add(pipeline, "best_val_mse", min(val) if val else None, layers)
            out.add(pipeline, "epochs_run", len(history), layers)
            if config.predict and layers == config.layers[0]:
                console.say(f"{pipeline}: GO prediction")
                _predict(pipeline, db, model_dir, config, out)
    if config.note:
        for r in out.rows:
            if r["metric"] == "contrasts":
                r["note"] = f"{r['note']}; {config.note}"
    store(out)
    return out


def store(comparison: Comparison) -> None:
    """Write the rows to `ml.study_comparison` of the degae warehouse (replacing the run)."""
    con = warehouse.connect(comparison.degae_db, write=True)
    try:
        warehouse.migrate(con)
        con.register("study_comparison_rows", pa.Table.from_pylist(comparison.rows))
        with transaction(con):
            con.execute(read_query("study/comparison_delete"), {"run_id": comparison.run_id})
            con.execute(read_query("study/comparison_insert"))
    finally:
        con.close()


def report_section(con: duckdb.DuckDBPyConnection, figures: Any = None) -> Any:
    """The latest comparison as a `degae_tools.report.Section` (None without one), for the
    report's list of section builders."""
    import html

    from degae_tools.report import Section

    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema = 'ml' AND table_name = 'study_comparison'"
    ).fetchone()[0]
    rows = con.execute(read_query("study/comparison_latest")).fetchall() if exists else []
    if not rows:
        return None
    out = Comparison("latest", Path(), Path())
    for pipeline, metric, layers, value, seconds, note in rows:
        out.add(pipeline, metric, value, layers, seconds, note or "")
    columns, table = out.table()

    def cell(v: Any) -> str:
        text = "–" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)
        return f"<td>{html.escape(text)}</td>"

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(cell(v) for v in r) + "</tr>" for r in table)
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in out.notes())
    return Section(
        "study-comparison",
        "The reference study, side by side",
        "The reference study's recipe (first value vs rest, limma on raw counts, FWER over or "
        "under, genes in every series, random 64/16/20 split, StandardScaler then "
        "VarianceThreshold(1), sigmoid output on standardised data) and degae's defaults on the "
        "same compendium. MSE and R² are held-out, in standardised log2FC units.",
        [
            f'<div class="table"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>",
            f"<ul>{notes}</ul>",
        ],
    )
