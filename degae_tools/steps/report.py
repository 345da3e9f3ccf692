"""`report`: one self-contained HTML page of the warehouse and its models (PNGs embedded).

Each section's builder reads the tables it needs through the warehouse handle and gathers named
records: tables, figures, and captions written from the figures it measured. The page's
structure lives in templates (`degae_tools/templates/report/`: a base page and one partial per
section). A section appears only when its tables hold rows, so the report grows as the pipeline
runs: warehouse, dimension reduction, latent space, models, training, search, reconstruction, GO
prediction, top genes per term, checks, real signatures (models of an imported collection such as
L1000), and the reference study side by side.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from importlib import metadata
from pathlib import Path
from typing import Any

import jinja2

from degae_tools import console, plots
from degae_tools.reduction import METHOD_NAMES, STUDY_FIRST_TWO_PCS, components_for
from degae_tools.steps.reduce import contrast_labels
from warehouse import Warehouse
from warehouse.queries import Query

SUMMARY = Query("report/summary")
INCLUSION = Query("report/inclusion")
DE_GO_COUNTS = Query("report/de_go_counts")
REDUCE_RUN = Query("report/reduce_run")
EXPLAINED_VARIANCE = Query("report/explained_variance")
EMBEDDING_METHODS = Query("report/embedding_methods")
EMBEDDING = Query("report/embedding")
LATENT_MODELS = Query("report/latent_models")
MODELS = Query("report/models")
HISTORY = Query("report/history")
TRIALS = Query("report/trials")
SEARCH_BEST = Query("report/search_best")
RECONSTRUCTION = Query("report/reconstruction")
GO_METRICS = Query("report/go_metrics")
GO_BEST_TERMS = Query("report/go_best_terms")
TERM_GENES = Query("report/term_genes")
ATTRIBUTION_TOP_K = Query("report/attribution_top_k")
VALIDATION = Query("report/validation")
STUDY_COMPARISON = Query("report/study_comparison")
REAL_RECONSTRUCTION = Query("report/real_reconstruction")
REAL_GO_METRICS = Query("report/real_go_metrics")
REAL_ANNOTATION_CHECKS = Query("report/real_annotation_checks")

MAX_MODELS = 6
MAX_TERMS = 12
GENES_PER_TERM = 10
BEST_TERMS = 5
# A term with a handful of positive test contrasts reaches AUROC = AUPRC = 1 by luck; the
# best-predicted list only ranks terms with at least this many.
MIN_TEST_POSITIVES = 10
CHANCE_AUROC = 0.5
# The label-frequency baseline scores every contrast alike, so its AUPRC is the terms' mean
# prevalence in the test split: AUPRC's chance level.
PRIOR = "prior"
# Headline figures of ml.models.metrics shown as columns when a model has them: (column, key;
# a dotted key reads a nested record).
AUTOENCODER_METRICS = (
    ("epochs", "epochs_run"),
    ("final val. loss", "val_loss"),
    ("test R²", "autoencoder_test_r2"),
    ("PCA test R²", "pca_test_r2"),
    ("genes in", "n_features"),
    ("train contrasts", "n_train"),
    ("seconds", "seconds"),
)
PREDICTOR_METRICS = (
    ("latent head macro AUROC", "latent_head.macro_auroc"),
    ("macro AUPRC", "latent_head.macro_auprc"),
    ("terms scored", "latent_head.n_terms_scored"),
    ("best baseline macro AUROC", "best_baseline.macro_auroc"),
)

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("degae_tools", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.tests["nan"] = lambda v: isinstance(v, float) and math.isnan(v)
TEMPLATES.tests["datetime"] = lambda v: isinstance(v, datetime)


# --- records the templates lay out -------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One embedded PNG (`src` is a data: URI) and its caption."""

    name: str
    src: str
    caption: str = ""


@dataclass(frozen=True)
class Table:
    """Column names and rows of values; the templates format each value by its type."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def __contains__(self, value: object) -> bool:
        return any(value == cell for row in self.rows for cell in row)

    def __len__(self) -> int:
        return len(self.rows)


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    """A Table from column names and row sequences."""
    return Table(tuple(columns), tuple(tuple(r) for r in rows))


@dataclass(frozen=True)
class Section:
    """A titled part of the page: `partial` (a template) lays out `content` (a record)."""

    anchor: str
    title: str
    partial: str
    content: Any


class Figures:
    """Turns matplotlib figures into embedded `Figure` records (and PNG files given a folder)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def embed(self, fig: Any, name: str, caption: str = "") -> Figure:
        """The figure as a base64 PNG record; closes the figure."""
        import matplotlib.pyplot as plt

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        plt.close(fig)
        png = buffer.getvalue()
        if self.folder is not None:
            (self.folder / f"{name}.png").write_bytes(png)
        data = base64.b64encode(png).decode("ascii")
        return Figure(name, f"data:image/png;base64,{data}", caption)


Builder = Callable[[Warehouse, Figures], Section | None]


def write_report(wh: Warehouse, out: Path, figures_dir: Path | None = None) -> Path:
    """Write the report of the warehouse `wh` to `out`; returns the path.

    `figures_dir` also saves every figure as a PNG there (for a README or slides).
    """
    out = Path(out)
    figures = Figures(Path(figures_dir) if figures_dir is not None else None)
    builders: list[Builder] = [
        warehouse_section,
        reduction_section,
        latent_section,
        models_section,
        training_section,
        search_section,
        reconstruction_section,
        go_prediction_section,
        term_genes_section,
        checks_section,
        real_signatures_section,
        study_section,
    ]
    with wh.session():
        sections = [
            section
            for build in console.progress(builders, total=len(builders), description="report")
            if (section := build(wh, figures)) is not None
        ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(sections, wh.path), encoding="utf-8")
    return out


def render(sections: Sequence[Section], db_path: Path) -> str:
    """The whole HTML document."""
    page = {
        "warehouse": str(db_path),
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "version": _version(),
    }
    return TEMPLATES.get_template("report/base.html.j2").render(page=page, sections=sections)


# --- warehouse ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WarehouseContent:
    kpis: tuple[tuple[str, int], ...]
    inclusion_figure: Figure | None
    inclusion: Table | None
    steps: Table | None
    counts: Table


def warehouse_section(wh: Warehouse, figures: Figures) -> Section | None:
    """Row counts, GEO series included or excluded (and why), and DE/GO steps run or skipped."""
    counts = wh.rows(SUMMARY)
    inclusion = wh.rows(INCLUSION)
    steps = wh.rows(DE_GO_COUNTS)
    if not inclusion and not any(n for _, n in counts):
        return None
    by_table = dict(counts)
    kpis = (
        ("GEO series included", by_table.get("core.included_datasets", 0)),
        ("contrasts analysed", by_table.get("core.included_contrasts", 0)),
        ("genes", by_table.get("core.genes", 0)),
        ("GO terms", by_table.get("core.go_terms", 0)),
        ("models", by_table.get("ml.models", 0)),
    )
    inclusion_figure = None
    if inclusion:
        fig = plots.plot_counts(
            [r[0] for r in inclusion],
            [r[1] for r in inclusion],
            "GEO series by inclusion outcome",
            "GEO series",
        )
        caption = "GEO series included, and excluded by reason"
        inclusion_figure = figures.embed(fig, "inclusion", caption)
    content = WarehouseContent(
        kpis=tuple((label, int(n)) for label, n in kpis),
        inclusion_figure=inclusion_figure,
        inclusion=table(["outcome", "series", "runs", "contrasts"], inclusion)
        if inclusion
        else None,
        steps=table(["step", "status", "reason", "contrasts"], steps) if steps else None,
        counts=table(["table", "rows"], [r for r in counts if r[1]]),
    )
    return Section("warehouse", "Warehouse", "report/sections/warehouse.html.j2", content)


# --- dimension reduction and latent space ------------------------------------------------------


@dataclass(frozen=True)
class ReductionContent:
    run_id: str
    genes_kept: int
    genes: int
    threshold: float | None
    perplexity: float
    first_two: float | None
    study_first_two: float
    levels: tuple[tuple[float, int | None], ...]
    variance: Figure | None
    embeddings: tuple[Figure, ...]


def reduction_section(wh: Warehouse, figures: Figures) -> Section | None:
    """Explained variance and the PCA/t-SNE pictures of the newest `reduce` run."""
    run = wh.one(REDUCE_RUN)
    if run is None:
        return None
    run_id, genes_kept, genes, detail = run
    ratio = [r[1] for r in wh.rows(EXPLAINED_VARIANCE, {"model_id": run_id})]
    methods = [m for m, _ in wh.rows(EMBEDDING_METHODS, {"model_id": run_id})]
    if not ratio and not methods:
        return None
    config = json.loads(detail).get("config", {}) if detail else {}
    variance = None
    if ratio:
        variance = figures.embed(plots.plot_explained_variance(ratio), "pca_explained_variance")
    content = ReductionContent(
        run_id=run_id,
        genes_kept=int(genes_kept),
        genes=int(genes or 0),
        threshold=config.get("variance_threshold"),
        perplexity=float(config.get("perplexity", 50)),
        first_two=sum(ratio[:2]) if ratio else None,
        study_first_two=STUDY_FIRST_TWO_PCS,
        levels=tuple(components_for(ratio).items()) if ratio else (),
        variance=variance,
        embeddings=tuple(_embedding_figure(wh, figures, run_id, m, ratio) for m in methods),
    )
    return Section("reduction", "Dimension reduction", "report/sections/reduction.html.j2", content)


@dataclass(frozen=True)
class LatentModel:
    model_id: str
    caption: str
    figures: tuple[Figure, ...]


@dataclass(frozen=True)
class LatentContent:
    models: tuple[LatentModel, ...]


def latent_section(wh: Warehouse, figures: Figures) -> Section | None:
    """Autoencoder latent codes projected to 2-D by `reduce` (latent_pca, latent_tsne)."""
    models = [r[0] for r in wh.rows(LATENT_MODELS, {"n_models": MAX_MODELS})]
    if not models:
        return None
    held_out = reconstruction_r2(wh.rows(RECONSTRUCTION))
    shown = []
    for model_id in models:
        methods = [m for m, _ in wh.rows(EMBEDDING_METHODS, {"model_id": model_id})]
        pictures = tuple(
            _embedding_figure(wh, figures, model_id, m) for m in methods if m.startswith("latent_")
        )
        shown.append(LatentModel(model_id, latent_caption(held_out.get(model_id)), pictures))
    content = LatentContent(tuple(shown))
    return Section("latent", "Latent space", "report/sections/latent.html.j2", content)


@dataclass(frozen=True)
class HeldOut:
    """Held-out reconstruction R² of one model and of PCA with as many components."""

    split: str
    autoencoder: float
    pca: float


def reconstruction_r2(rows: Sequence[Sequence[Any]]) -> dict[str, HeldOut]:
    """Per model, its test-split (else validation) R² beside PCA's, from report/reconstruction."""
    r2: dict[tuple[str, str], dict[str, float]] = {}
    for model_id, split, method, _dims, _mse, value in rows:
        if value is not None:
            r2.setdefault((model_id, split), {})[method] = value
    out: dict[str, HeldOut] = {}
    for split in ("validation", "test"):  # test last: it wins where both are stored
        for (model_id, s), by in r2.items():
            if s == split and {"autoencoder", "pca"} <= by.keys():
                out[model_id] = HeldOut(split, by["autoencoder"], by["pca"])
    return out


def latent_caption(held_out: HeldOut | None) -> str:
    """What the reconstruction table says about a model's latent space beside PCA, in a line.

    Only an autoencoder that reconstructs held-out contrasts better than PCA of the same size
    is said to capture structure PCA lacks."""
    if held_out is None:
        return (
            "No held-out reconstruction is stored for this model, so nothing here says whether "
            "its latent space holds structure that PCA lacks."
        )
    figures = (
        f"held-out ({held_out.split}) R² {held_out.autoencoder:.3g} against "
        f"{held_out.pca:.3g} for PCA with as many components"
    )
    if held_out.autoencoder > held_out.pca:
        return (
            f"The autoencoder reconstructs held-out contrasts better than PCA ({figures}): "
            "grouping by GO term here that the PCA picture lacks may be structure it learned."
        )
    return (
        f"The autoencoder does not reconstruct held-out contrasts better than PCA ({figures}): "
        "read differences from the PCA picture as a different projection, not as structure the "
        "autoencoder learned."
    )


def _embedding_figure(
    wh: Warehouse, figures: Figures, model_id: str, method: str, ratio: Sequence[float] = ()
) -> Figure:
    rows = wh.rows(EMBEDDING, {"model_id": model_id, "method": method})
    ids = [r[0] for r in rows]
    coords = [[r[1], r[2] if r[2] is not None else 0.0] for r in rows]
    labels, legend = contrast_labels(wh, ids, "top_go")
    name = METHOD_NAMES.get(method, method)
    short = METHOD_NAMES.get(method.removeprefix("latent_"), name)
    axes = (f"{short} 1", f"{short} 2")
    if short == "PCA":
        axes = ("PC1", "PC2")
        if method == "pca" and len(ratio) >= 2:
            axes = (f"PC1 ({ratio[0]:.1%} of variance)", f"PC2 ({ratio[1]:.1%})")
    title = f"{name} ({len(ids):,} contrasts)"
    fig = plots.plot_embedding(coords, labels, title, axis_labels=axes, legend_title=legend)
    return figures.embed(fig, f"{model_id}_{method}")


# --- models, training, search ------------------------------------------------------------------


@dataclass(frozen=True)
class TableContent:
    table: Table


@dataclass(frozen=True)
class FiguresContent:
    figures: tuple[Figure, ...]


@dataclass(frozen=True)
class ModelsContent:
    autoencoders: Table | None
    predictors: Table | None


def models_section(wh: Warehouse, figures: Figures) -> Section | None:
    """Every trained model with its kind and date, and its headline metrics one per column:
    autoencoders and GO predictors in two tables, as their metrics differ."""
    models = wh.rows(MODELS)
    if not models:
        return None
    autoencoders, predictors = [], []
    for model_id, kind, study, created, config, metrics in models:
        values = _json_object(metrics)
        if kind == "predictor":
            predictors.append(([model_id, created], _with_best_baseline(values)))
        else:
            first = [model_id, kind, _reads(kind, config), "yes" if study else "", created]
            autoencoders.append((first, values))
    content = ModelsContent(
        _metrics_table(
            ["model", "kind", "reads", "study mode", "created"], autoencoders, AUTOENCODER_METRICS
        ),
        _metrics_table(["model", "created"], predictors, PREDICTOR_METRICS),
    )
    return Section("models", "Models", "report/sections/models.html.j2", content)


def _metrics_table(
    first: list[str], models: list[tuple[list, dict]], metrics: Sequence[tuple[str, str]]
) -> Table | None:
    """The `first` columns of each model, then each of `metrics` that some model has."""
    if not models:
        return None
    found = [
        (name, key) for name, key in metrics if any(_lookup(m, key) is not None for _, m in models)
    ]
    rows = [cells + [_lookup(values, key) for _, key in found] for cells, values in models]
    return table(first + [name for name, _ in found], rows)


def _with_best_baseline(summary: dict[str, Any]) -> dict[str, Any]:
    """A predictor's metrics with `best_baseline`: the baseline of highest macro AUROC."""
    baselines = [
        v for k, v in summary.items() if k not in ("latent_head", PRIOR) and isinstance(v, dict)
    ]
    scored = [b for b in baselines if _lookup(b, "macro_auroc") is not None]
    best = max(scored, key=lambda b: b["macro_auroc"], default={})
    return {**summary, "best_baseline": best}


def _lookup(values: Mapping[str, Any], key: str) -> float | int | None:
    """A number at a dotted key of nested records (None where absent or not a number)."""
    value: Any = values
    for part in key.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _reads(kind: str, config: str | None) -> str:
    """What an autoencoder reads of each gene: log2FC (signed) or |log2FC|; blank otherwise."""
    if not config:
        return ""
    values = _json_object(config)
    if not values:
        return ""
    return "|log2FC|" if values.get("representation") == "magnitude" else "log2FC"


def training_section(wh: Warehouse, figures: Figures) -> Section | None:
    """Training and validation loss per epoch of the newest models."""
    rows = wh.rows(HISTORY, {"n_models": MAX_MODELS})
    if not rows:
        return None
    histories: dict[str, list[dict[str, float]]] = {}
    for model_id, epoch, loss, val_loss, rate in rows:
        histories.setdefault(model_id, []).append(
            {"epoch": epoch, "loss": loss, "val_loss": val_loss, "learning_rate": rate}
        )
    pictures = tuple(
        figures.embed(plots.plot_history(h, title=model_id), f"history_{model_id}")
        for model_id, h in histories.items()
    )
    content = FiguresContent(pictures)
    return Section("training", "Training", "report/sections/training.html.j2", content)


@dataclass(frozen=True)
class SearchContent:
    searches: tuple[tuple[Figure, ...], ...]
    best: Table


def search_section(wh: Warehouse, figures: Figures) -> Section | None:
    """Cross-validated loss of every architecture tried, and the best ones per search."""
    trials = wh.rows(TRIALS)
    if not trials:
        return None
    columns = ["search_id", "trial", "fold", "neurons", "layers", "kind", "val_loss", "seconds"]
    by_search: dict[str, list[dict[str, Any]]] = {}
    for row in trials:
        record = dict(zip(columns, row, strict=True))
        by_search.setdefault(record["search_id"], []).append(record)
    searches = []
    for search_id, records in by_search.items():
        pictures = tuple(
            figures.embed(plots.plot_search(records, by=by), f"search_{search_id}_{by}")
            for by in ("neurons", "layers")
            if len({r[by] for r in records}) > 1
        )
        if pictures:
            searches.append(pictures)
    best = table(
        ["search", "neurons", "layers", "kind", "mean held-out loss", "folds"],
        wh.rows(SEARCH_BEST),
    )
    content = SearchContent(tuple(searches), best)
    return Section("search", "Architecture search", "report/sections/search.html.j2", content)


# --- reconstruction and GO prediction ----------------------------------------------------------


@dataclass(frozen=True)
class ReconstructionContent:
    figure: Figure | None
    table: Table
    verdicts: tuple[str, ...]


def reconstruction_section(wh: Warehouse, figures: Figures) -> Section | None:
    """Held-out reconstruction R² of each autoencoder beside PCA of the same latent size."""
    rows = wh.rows(RECONSTRUCTION)
    if not rows:
        return None
    values: dict[str, dict[str, float]] = {}
    for model_id, split, method, _dims, _mse, r2 in rows:
        if r2 is not None:
            values.setdefault(f"{model_id} · {split}", {})[method] = r2
    figure = None
    if values:
        fig = plots.plot_grouped_bars(values, "Held-out reconstruction", "R² (higher is better)")
        figure = figures.embed(fig, "reconstruction")
    verdicts = tuple(
        f"{model_id}: {latent_caption(held_out)}"
        for model_id, held_out in reconstruction_r2(rows).items()
    )
    content = ReconstructionContent(
        figure, table(["model", "split", "method", "latent dims", "MSE", "R²"], rows), verdicts
    )
    title = "Reconstruction: autoencoder vs PCA"
    return Section("reconstruction", title, "report/sections/reconstruction.html.j2", content)


@dataclass(frozen=True)
class GoPredictionContent:
    figures: tuple[Figure, ...]
    table: Table
    best: Table | None
    best_per_predictor: int
    min_test_positives: int
    chance_auroc: float
    prior_auprc: float | None


def go_prediction_section(wh: Warehouse, figures: Figures) -> Section | None:
    """GO-term prediction from the latent code against the baselines, and the best terms."""
    rows = wh.rows(GO_METRICS)
    if not rows:
        return None
    per_model: dict[str, dict[str, dict[str, float]]] = {}
    for model_id, predictor, average, auroc, auprc, _n in rows:
        if average == "macro":
            scores = per_model.setdefault(model_id, {"AUROC": {}, "AUPRC": {}})
            scores["AUROC"][predictor] = auroc
            scores["AUPRC"][predictor] = auprc
    pictures, prior_auprc = [], None
    for model_id, scores in per_model.items():
        chance = {"AUROC": (CHANCE_AUROC, f"chance ({CHANCE_AUROC:g})")}
        prevalence = scores["AUPRC"].get(PRIOR)
        if prevalence is not None:
            chance["AUPRC"] = (prevalence, f"chance: mean prevalence ({prevalence:.3g})")
            prior_auprc = prevalence
        fig = plots.plot_score_panels(scores, model_id, chance)
        caption = f"{model_id}: macro averages over GO terms, per predictor"
        pictures.append(figures.embed(fig, f"go_metrics_{model_id}", caption))
    best = wh.rows(
        GO_BEST_TERMS, {"per_predictor": BEST_TERMS, "min_test_positives": MIN_TEST_POSITIVES}
    )
    best_columns = ["model", "predictor", "GO term", "name", "train +", "test +", "AUROC", "AUPRC"]
    content = GoPredictionContent(
        figures=tuple(pictures),
        table=table(["model", "predictor", "average", "AUROC", "AUPRC", "terms"], rows),
        best=table(best_columns, best) if best else None,
        best_per_predictor=BEST_TERMS,
        min_test_positives=MIN_TEST_POSITIVES,
        chance_auroc=CHANCE_AUROC,
        prior_auprc=prior_auprc,
    )
    return Section(
        "go-prediction", "GO prediction", "report/sections/go_prediction.html.j2", content
    )


# --- real signatures ---------------------------------------------------------------------------


# Column names of the reconstruction methods that are not an autoencoder kind.
BASELINE_NAMES = {"pca": "PCA", "ica": "FastICA", "nmf": "NMF", "nmf_magnitude": "NMF (|z|)"}
# GO predictors fitted beside each model's latent head, in the order shown.
GO_BASELINES = {
    "pca_logreg": "PCA-logreg",
    "genes_ridge": "ridge (genes)",
    "prior": "prior",
    "genes_code_ridge": "ridge (genes + code)",
    "genes_magnitude_ridge": "ridge (genes, |genes|, code)",
    "head_ridge_rank_mean": "head + ridge (rank mean)",
}
ANNOTATION_METHODS = {
    "ig": "IG",
    "abs_z": "|z|",
    "ig_same_pairs": "IG (sampled pairs)",
    "ig_random_weights": "IG, randomised weights",
    "random_genes": "random genes",
}


@dataclass(frozen=True)
class CollectionResults:
    """One imported collection's model figures and the captions written from them."""

    collection: str
    reconstruction: Table
    reconstruction_caption: str
    go_auprc: Table | None
    go_auroc: Table | None
    go_caption: str
    annotation: Table | None
    annotation_caption: str


@dataclass(frozen=True)
class RealSignaturesContent:
    collections: tuple[CollectionResults, ...]


def real_signatures_section(wh: Warehouse, figures: Figures) -> Section | None:
    """Models of imported collections (e.g. L1000): held-out R² by latent size per autoencoder
    kind beside PCA, FastICA and NMF; GO macro AUROC/AUPRC per predictor; and the share of the
    top attributed genes annotated to the predicted term, beside |z| and randomised weights."""
    recon = _by_collection(wh.rows(REAL_RECONSTRUCTION))
    if not recon:
        return None
    go = _by_collection(wh.rows(REAL_GO_METRICS))
    checks = _by_collection(wh.rows(REAL_ANNOTATION_CHECKS))
    blocks = []
    for collection, rows in recon.items():
        r2 = r2_by_latent(rows)
        auprc, auroc = go_by_latent(go.get(collection, []))
        annotation = annotation_rows(checks.get(collection, []))
        blocks.append(
            CollectionResults(
                collection=collection,
                reconstruction=_wide_table(r2),
                reconstruction_caption=r2_caption(r2),
                go_auprc=_wide_table(auprc) if auprc else None,
                go_auroc=_wide_table(auroc) if auroc else None,
                go_caption=go_caption(auprc) if auprc else "",
                annotation=_annotation_table(annotation) if annotation else None,
                annotation_caption=annotation_caption(annotation) if annotation else "",
            )
        )
    content = RealSignaturesContent(tuple(blocks))
    return Section(
        "real-signatures", "Real signatures", "report/sections/real_signatures.html.j2", content
    )


ByLatent = dict[int, dict[str, float]]


def _by_collection(rows: Iterable[Sequence[Any]]) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for row in rows:
        out.setdefault(row[0], []).append(tuple(row[1:]))
    return out


def _mean_of(values: dict[int, dict[str, list[float]]]) -> ByLatent:
    return {k: {c: sum(v) / len(v) for c, v in cols.items()} for k, cols in sorted(values.items())}


def r2_by_latent(rows: Iterable[Sequence[Any]]) -> ByLatent:
    """{latent: {column: test R²}} from report/real_reconstruction rows (kind, model, method,
    latent, R²): one column per autoencoder kind (mean over its models, e.g. seeds), per
    ensemble, and per baseline."""
    values: dict[int, dict[str, list[float]]] = {}
    for kind, _model, method, latent, r2 in rows:
        if method == "autoencoder":
            column = kind
        elif method.startswith("ensemble"):
            column = f"{kind} ensemble ({method.removeprefix('ensemble')} seeds)"
        else:
            column = BASELINE_NAMES.get(method, method)
        values.setdefault(int(latent), {}).setdefault(column, []).append(float(r2))
    return _mean_of(values)


def _autoencoder_columns(by: Mapping[str, float]) -> dict[str, float]:
    baselines = set(BASELINE_NAMES.values())
    return {c: v for c, v in by.items() if c not in baselines}


def r2_caption(r2: ByLatent) -> str:
    """Where the best autoencoder column beats PCA of the same size and where it does not, in
    the measured figures; a code is said to hold structure PCA lacks only where it beats PCA."""
    above, below = [], []
    for latent, by in r2.items():
        models = _autoencoder_columns(by)
        if "PCA" not in by or not models:
            continue
        name = max(models, key=models.get)
        entry = (latent, name, models[name], by["PCA"])
        (above if models[name] > by["PCA"] else below).append(entry)
    if not above and not below:
        return "No latent size has both an autoencoder and PCA scored on the test split."

    def example(entries: list[tuple[int, str, float, float]]) -> str:
        latent, name, value, pca = max(entries, key=lambda e: abs(e[2] - e[3]))
        return f"at k = {latent}, {name} {value:.3f} against PCA {pca:.3f}"

    def sizes(entries: list[tuple[int, str, float, float]]) -> str:
        return ", ".join(str(e[0]) for e in entries)

    if not above:
        return (
            f"No autoencoder reconstructs held-out signatures better than PCA of the same size "
            f"at any latent size measured ({example(below)}): read its codes as another "
            "projection, not as structure PCA lacks."
        )
    text = (
        f"The best autoencoder reconstructs held-out signatures better than PCA of the same size "
        f"at latent {sizes(above)} ({example(above)}); only there may its code hold structure "
        "PCA lacks."
    )
    if below:
        text += f" PCA is as good or better at latent {sizes(below)} ({example(below)})."
    return text


def go_by_latent(rows: Iterable[Sequence[Any]]) -> tuple[ByLatent, ByLatent]:
    """({latent: {column: macro AUPRC}}, the same for AUROC) from report/real_go_metrics rows
    (kind, model, latent, predictor, AUROC, AUPRC, terms): each kind's latent head, then the
    baselines and combinations (mean over the models they were fitted beside)."""
    auprc: dict[int, dict[str, list[float]]] = {}
    auroc: dict[int, dict[str, list[float]]] = {}
    for kind, _model, latent, predictor, roc, pr, _terms in rows:
        column = f"{kind} head" if predictor == "latent_head" else GO_BASELINES.get(predictor)
        if column is None or latent is None:
            continue
        for store, value in ((auprc, pr), (auroc, roc)):
            if value is not None:
                store.setdefault(int(latent), {}).setdefault(column, []).append(float(value))
    return _mean_of(auprc), _mean_of(auroc)


def go_caption(auprc: ByLatent) -> str:
    """Latent heads against PCA-logreg at each size, and the highest macro AUPRC against ridge."""
    wins, losses, best, closest = [], [], None, None
    for latent, by in auprc.items():
        heads = {c: v for c, v in by.items() if c.endswith(" head")}
        if heads and "PCA-logreg" in by:
            top = max(heads, key=heads.get)
            margin = heads[top] - by["PCA-logreg"]
            (wins if margin >= 0 else losses).append(latent)
            if closest is None or abs(margin) < abs(closest[3]):
                closest = (latent, top, heads[top], margin, by["PCA-logreg"])
        for column, value in by.items():
            if column != "prior" and (best is None or value > best[2]):
                best = (latent, column, value)
    parts = []
    if wins or losses:
        said = f"A latent head matches or beats PCA-logreg at latent {', '.join(map(str, wins))}"
        if not wins:
            said = "No latent head reaches PCA-logreg's macro AUPRC at any latent size"
        if wins and losses:
            said += f", not at {', '.join(map(str, losses))}"
        latent, top, value, _, pca = closest
        said += f" (closest: k = {latent}, {top} {value:.3f} against PCA-logreg {pca:.3f})"
        parts.append(said + ".")
    ridge = next((by["ridge (genes)"] for by in auprc.values() if "ridge (genes)" in by), None)
    prior = next((by["prior"] for by in auprc.values() if "prior" in by), None)
    if best is not None:
        latent, column, value = best
        line = (
            f"The highest macro AUPRC on the test split is {column} at latent {latent}, {value:.3f}"
        )
        if ridge is not None:
            verb = "above" if value > ridge else "not above"
            line += f", {verb} ridge on all genes ({ridge:.3f})"
        if prior is not None:
            line += f"; the prior, AUPRC's chance level, is {prior:.3f}"
        parts.append(line + ".")
    return " ".join(parts)


@dataclass(frozen=True)
class AnnotationCheck:
    """One model's top-k annotated shares by method, and how many pairs each covers."""

    model_id: str
    kind: str
    latent: int | None
    k: str
    share: dict[str, float]
    pairs: dict[str, int]


def annotation_rows(rows: Iterable[Sequence[Any]]) -> list[AnnotationCheck]:
    """Per model, from report/real_annotation_checks rows (kind, model, latent, check, method,
    value, n)."""
    out: dict[str, AnnotationCheck] = {}
    for kind, model_id, latent, check, method, value, n in rows:
        k = check.split("@", 1)[-1]
        found = out.setdefault(model_id, AnnotationCheck(model_id, kind, latent, k, {}, {}))
        found.share[method] = float(value)
        found.pairs[method] = int(n or 0)
    return list(out.values())


def _annotation_table(checks: Sequence[AnnotationCheck]) -> Table:
    methods = [m for m in ANNOTATION_METHODS if any(m in c.share for c in checks)]
    columns = ["model", "latent", "top k", *(ANNOTATION_METHODS[m] for m in methods), "pairs"]
    rows = [
        [c.model_id, c.latent, c.k, *(c.share.get(m) for m in methods), c.pairs.get("ig")]
        for c in checks
    ]
    return table(columns, rows)


def annotation_caption(checks: Sequence[AnnotationCheck]) -> str:
    """What the first model's annotation check measured, in words and figures."""
    c = checks[0]
    s = c.share
    if "ig" not in s:
        return ""
    text = (
        f"{s['ig']:.1%} of the top {c.k} genes integrated gradients credits for a predicted term "
        f"are annotated to that term or a descendant ({c.pairs.get('ig', 0):,} pairs, "
        f"{c.kind} at latent {c.latent})"
    )
    if "abs_z" in s:
        verb = "above" if s["ig"] > s["abs_z"] else "not above"
        text += f", {verb} the top {c.k} by |z| ({s['abs_z']:.1%})"
    if "ig_random_weights" in s:
        same = s.get("ig_same_pairs", s["ig"])
        ratio = same / s["ig_random_weights"] if s["ig_random_weights"] > 0 else math.inf
        text += (
            f"; through randomised weights {s['ig_random_weights']:.1%} against {same:.1%} for the "
            f"trained model on the same pairs ({ratio:.1f}×)"
        )
    if "random_genes" in s:
        text += (
            f"; a random gene is annotated to such a term with probability {s['random_genes']:.1%}"
        )
    return text + "."


def _wide_table(values: ByLatent) -> Table:
    columns: list[str] = []
    for by in values.values():
        columns += [c for c in by if c not in columns]
    return table(
        ["latent", *columns], [[k, *(by.get(c) for c in columns)] for k, by in values.items()]
    )


# --- attributions, checks, the reference study ------------------------------------------------


@dataclass(frozen=True)
class TermGene:
    rank: int
    symbol: str
    gene_id: str
    attribution: float | None
    bar_percent: int
    frac_top_k: float | None


@dataclass(frozen=True)
class TermCard:
    model_id: str
    go_id: str
    name: str
    n_pairs: int
    top_k: int | None
    genes: tuple[TermGene, ...]


@dataclass(frozen=True)
class Leader:
    """A gene ranked first for several of the terms shown."""

    symbol: str
    n_terms: int


@dataclass(frozen=True)
class TermGenesContent:
    cards: tuple[TermCard, ...]
    top_k: tuple[int, ...]
    leaders: tuple[Leader, ...]


def term_genes_section(wh: Warehouse, figures: Figures) -> Section | None:
    """The genes integrated gradients credit most for each GO term's prediction."""
    rows = wh.rows(TERM_GENES, {"n_terms": MAX_TERMS, "n_genes": GENES_PER_TERM})
    if not rows:
        return None
    top_k = dict(wh.rows(ATTRIBUTION_TOP_K))
    terms: dict[tuple[str, str], list[tuple]] = {}
    for row in rows:
        terms.setdefault((row[0], row[1]), []).append(row)
    cards = tuple(
        _term_card(model_id, go_id, rows, top_k) for (model_id, go_id), rows in terms.items()
    )
    content = TermGenesContent(
        cards=cards,
        top_k=tuple(sorted({k for k in top_k.values() if k})),
        leaders=leading_genes(cards),
    )
    title = "Top genes per GO term"
    return Section("term-genes", title, "report/sections/term_genes.html.j2", content)


def _term_card(model_id: str, go_id: str, rows: list[tuple], top_k: Mapping[str, int]) -> TermCard:
    _, _, name, n_pairs, *_ = rows[0]
    largest = max((r[7] or 0.0 for r in rows), default=0.0) or 1.0
    genes = tuple(
        TermGene(
            rank=rank,
            symbol=symbol or "",
            gene_id=gene_id or "",
            attribution=value,
            bar_percent=round(100 * (value or 0.0) / largest),
            frac_top_k=frac,
        )
        for _, _, _, _, rank, symbol, gene_id, value, frac in rows
    )
    return TermCard(model_id, go_id, name or go_id, int(n_pairs), top_k.get(model_id), genes)


def leading_genes(cards: Sequence[TermCard]) -> tuple[Leader, ...]:
    """Genes ranked first in more than one of the cards, most terms first."""
    firsts = Counter(card.genes[0].symbol or card.genes[0].gene_id for card in cards if card.genes)
    return tuple(Leader(symbol, n) for symbol, n in firsts.most_common() if n > 1)


def checks_section(wh: Warehouse, figures: Figures) -> Section | None:
    """Every rerunnable check stored in ml.validation (precision@k, Jaccard, completeness, ...)."""
    rows = wh.rows(VALIDATION)
    if not rows:
        return None
    shown = [[m, c, method, v, n, _detail(d)] for m, c, method, v, n, d in rows]
    content = TableContent(table(["model", "check", "method", "value", "n", "detail"], shown))
    return Section("checks", "Checks", "report/sections/checks.html.j2", content)


@dataclass(frozen=True)
class StudyContent:
    table: Table
    notes: tuple[str, ...]


def study_section(wh: Warehouse, figures: Figures | None = None) -> Section | None:
    """The latest `compare-study` run: the reference study's recipe beside degae's defaults."""
    if not wh.has_table("ml.study_comparison"):
        return None
    rows = wh.rows(STUDY_COMPARISON)
    if not rows:
        return None
    columns = ["metric", "layers", "study", "degae", "study s", "degae s"]
    shown = [[metric, layers or "", *values] for metric, layers, *values, _ in rows]
    notes = tuple(note for *_, row_notes in rows for note in row_notes or ())
    content = StudyContent(table(columns, shown), notes)
    title = "The reference study, side by side"
    return Section("study-comparison", title, "report/sections/study_comparison.html.j2", content)


# --- reading a written report back -------------------------------------------------------------


def report_sections(text: str) -> dict[str, dict[str, int]]:
    """Images and tables per section of a written report, keyed by section anchor (for checks)."""
    parser = _SectionCounter()
    parser.feed(text)
    return parser.sections


class _SectionCounter(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, dict[str, int]] = {}
        self.current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self.current = dict(attrs).get("id") or f"section-{len(self.sections) + 1}"
            self.sections[self.current] = {"img": 0, "table": 0}
        elif tag in ("img", "table") and self.current is not None:
            self.sections[self.current][tag] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self.current = None


def _json_object(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _detail(text: str | None) -> str:
    """A check's JSON detail as 'key: value' pairs (numbers to 4 significant digits)."""
    values = _json_object(text)
    if not values:
        return text or ""
    return ", ".join(
        f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}" for k, v in values.items()
    )


def _version() -> str:
    try:
        return metadata.version("degae")
    except metadata.PackageNotFoundError:
        return "(source tree)"
