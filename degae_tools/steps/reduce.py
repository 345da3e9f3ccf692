"""The `reduce` step: VarianceThreshold -> PCA -> t-SNE (-> UMAP) of the compendium's log2FC
matrix, and PCA and t-SNE of an autoencoder's latent code, stored and drawn.

Coordinates go to `ml.embeddings` under a run ID `reduce-<hash>` (same data and config, same ID;
a latent code's projections under its model's ID), the explained variance to `ml.validation`,
and scatter plots and the variance plot to a folder. The numerics are in
`degae_tools.reduction`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from degae_tools import console
from degae_tools.errors import ModelError, NothingToDo, ReduceError
from degae_tools.reduction import (
    METHOD_NAMES,
    STUDY_FIRST_TWO_PCS,
    PCASummary,
    ReduceConfig,
    principal_components,
    run_umap,
    select_genes,
    tsne,
)
from warehouse import Query, Warehouse
from warehouse.export import SPLITS, batch_matrix, ensure_split, iter_log2fc_batches

CONTRASTS_WITH_RESULTS = Query("reduce/contrasts_with_results")
TOP_GO = Query("reduce/top_go")
TERM_LOOKUP = Query("reduce/term_lookup")
TERM_ENRICHED = Query("reduce/term_enriched")
CONTRAST_ATTRIBUTES = Query("reduce/contrast_attributes")
DATASET_ATTRIBUTES = Query("reduce/dataset_attributes")
LATENT = Query("reduce/latent")
LATEST_LATENT_MODEL = Query("reduce/latest_latent_model")
MIN_CONTRASTS = 3
BATCH_ROWS = 256


class TooFewContrasts(NothingToDo, ReduceError):
    """Fewer contrasts with DE results than a projection needs."""


@dataclass
class Contrasts:
    """The contrasts of a matrix, in row order, with the split each belongs to."""

    ids: list[str]
    splits: list[str | None]


@dataclass(frozen=True)
class Colouring:
    """A label per contrast (None: drawn grey), the legend title, and a file-name slug."""

    labels: list[str | None]
    legend: str
    slug: str


@dataclass
class Space:
    """One set of contrasts projected: whose coordinates they are in ml.embeddings (a reduce run
    or the model whose latent code was projected), the coordinates per method, and how plots of
    them are coloured, titled and named."""

    owner: str
    contrasts: Contrasts
    coords: dict[str, np.ndarray]
    colourings: list[Colouring]
    subject: str
    prefix: str = ""
    pca: PCASummary | None = None


@dataclass
class ReduceResult:
    """What one `reduce` run wrote: its ID, the matrix it saw, the PCA figures and the plots."""

    run_id: str
    n_contrasts: int
    n_genes: int
    n_genes_kept: int
    pca: PCASummary
    methods: list[str]
    latent_model: str | None
    figures: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def headline(self) -> str:
        """The study's "first two PCs explain only ~4.4%" sentence, for this compendium."""
        return (
            f"the first two PCs explain {self.pca.first_two:.1%} of the variance of "
            f"{self.n_contrasts:,} contrasts x {self.n_genes_kept:,} genes "
            f"(the reference study: ~{STUDY_FIRST_TWO_PCS:.1%})"
        )

    def summary(self) -> dict[str, object]:
        """A flat record for the CLI."""
        record: dict[str, object] = {
            "run_id": self.run_id,
            "contrasts": self.n_contrasts,
            "genes": self.n_genes,
            "genes_kept": self.n_genes_kept,
            "first_two_pcs_explain": round(self.pca.first_two, 4),
        }
        for level, n in self.pca.components_for.items():
            record[f"pcs_for_{level:.0%}"] = n if n is not None else "not reached"
        record["methods"] = ", ".join(self.methods)
        record["latent_model"] = self.latent_model or ""
        record["figures"] = len(self.figures)
        return record


def run(
    wh: Warehouse, config: ReduceConfig = ReduceConfig(), out_dir: str | Path = "figures"
) -> ReduceResult:
    """Project the log2FC matrix (and the latent code of `config.model`, else of the newest
    model that has one); store coordinates and explained variance; draw the plots."""
    contrasts, x = read_log_fc(wh)
    latent = read_latent(wh, config.model)
    colour_by = ["top_go"] + ([config.color_by] if config.color_by != "top_go" else [])
    colourings = [colouring(wh, contrasts.ids, c) for c in colour_by]
    run_id = run_identifier(config, contrasts.ids, x)
    notes: list[str] = []
    console.say(f"VarianceThreshold({config.variance_threshold}) on {x.shape[1]:,} genes")
    keep = select_genes(x, config.variance_threshold)
    z = StandardScaler(copy=False).fit_transform(x[:, keep])
    del x  # the standardised copy of the kept genes is all PCA needs
    console.say(f"PCA on {len(contrasts.ids):,} contrasts x {z.shape[1]:,} genes")
    pca_scores, pca = principal_components(z, config.pca_components, config.seed)
    del z
    subject = f"{len(contrasts.ids):,} contrasts"
    coords = {"pca": pca_scores, **two_dimensional(pca_scores, config, notes)}
    spaces = [Space(run_id, contrasts, coords, colourings, subject, pca=pca)]
    if latent is not None:
        spaces.append(project_latent(wh, latent, colour_by, config))
    elif config.model is None:
        notes.append("no autoencoder latent code in ml.embeddings yet: latent projection skipped")
    with wh.transaction():
        for space in spaces:
            store_space(wh, space)
        store_checks(wh, validation_rows(run_id, config, pca, int(keep.sum()), len(keep)))
    result = ReduceResult(
        run_id=run_id,
        n_contrasts=len(contrasts.ids),
        n_genes=len(keep),
        n_genes_kept=int(keep.sum()),
        pca=pca,
        methods=[m for space in spaces for m in space.coords],
        latent_model=latent.owner if latent is not None else None,
        notes=notes,
    )
    write_figures(Path(out_dir), spaces, result, config)
    return result


def two_dimensional(pca_scores: np.ndarray, config: ReduceConfig, notes: list[str]) -> dict:
    """t-SNE (and UMAP when asked and installed) of the PCA scores; notes what was changed."""
    console.say(f"t-SNE (perplexity {config.perplexity:g}, {config.tsne_backend})")
    coords, used = tsne(pca_scores, config.perplexity, config.seed, config.tsne_backend)
    out = {"tsne": coords}
    if used != config.perplexity:
        notes.append(f"t-SNE perplexity lowered to {used:g}: only {len(pca_scores)} contrasts")
    if config.umap:
        umap_coords = run_umap(pca_scores, config.seed)
        if umap_coords is None:
            notes.append("umap-learn is not installed: UMAP skipped (pip install umap-learn)")
        else:
            out["umap"] = umap_coords
    return out


def project_latent(
    wh: Warehouse, latent: Space, colour_by: list[str], config: ReduceConfig
) -> Space:
    """PCA and t-SNE of a latent code (`latent.coords["latent"]`), coloured like the matrix."""
    codes = latent.coords["latent"]
    console.say(f"projecting the latent code of {latent.owner} ({codes.shape[1]} dimensions)")
    coords = {"latent_pca": PCA(2, random_state=config.seed).fit_transform(codes)}
    coords["latent_tsne"], _ = tsne(codes, config.perplexity, config.seed, config.tsne_backend)
    colourings = [colouring(wh, latent.contrasts.ids, c) for c in colour_by]
    prefix = f"{_slug(latent.owner)}_"
    return Space(latent.owner, latent.contrasts, coords, colourings, latent.owner, prefix)


# --- reading the warehouse ---------------------------------------------------------------------


def read_log_fc(wh: Warehouse, split_name: str = "degae") -> tuple[Contrasts, np.ndarray]:
    """Every contrast with DE results (with its split) and its float32 log2FC row.

    Rows come from `warehouse.export` (genes without a result are 0.0, as the trainer sees them);
    the series-wise split is created first if the warehouse has none, so that coordinates carry it.
    """
    n_contrasts = wh.scalar(CONTRASTS_WITH_RESULTS)
    _require_contrasts(n_contrasts)
    with wh.transaction(), wh.session() as con:
        ensure_split(con, split_name)
    ids: list[str] = []
    splits: list[str] = []
    parts: list[np.ndarray] = []
    with wh.session() as con:
        batches = iter_log2fc_batches(con, split_name, SPLITS, batch_size=BATCH_ROWS)
        total = math.ceil(n_contrasts / BATCH_ROWS)
        for batch in console.progress(batches, total=total, description="reading log2FC"):
            ids.extend(batch.column("contrast_id").to_pylist())
            splits.extend(batch.column("split").to_pylist())
            parts.append(batch_matrix(batch))
    _require_contrasts(len(ids))
    return Contrasts(ids, splits), np.concatenate(parts)


def _require_contrasts(n: int) -> None:
    if n < MIN_CONTRASTS:
        raise TooFewContrasts(
            f"reduce needs at least {MIN_CONTRASTS} contrasts with DE results, the warehouse has "
            f"{n}: run `degae-tools de` first (`degae-tools sql` on core.dataset_inclusion "
            f"shows why series were left out)"
        )


def read_latent(wh: Warehouse, model: str | None) -> Space | None:
    """The latent code of `model` (an id, or a model folder), else of the newest model with one,
    as a Space whose coords hold `latent` (None when no model has a code)."""
    if model is not None and (Path(model) / "config.json").is_file():
        model = json.loads((Path(model) / "config.json").read_text())["model_id"]
    if model is None:
        model = wh.scalar(LATEST_LATENT_MODEL)
        if model is None:
            return None
    table = wh.arrow(LATENT, {"model_id": model})
    if table.num_rows < MIN_CONTRASTS:
        raise ModelError(
            f"model {model!r} has {table.num_rows} latent codes in ml.embeddings (method "
            f"'latent'); at least {MIN_CONTRASTS} are needed: train it with `degae-tools train` "
            "first"
        )
    codes = np.array(table.column("coords").to_pylist(), dtype=np.float32)
    contrasts = Contrasts(
        table.column("contrast_id").to_pylist(), table.column("split").to_pylist()
    )
    return Space(model, contrasts, {"latent": codes}, [], model)


def colouring(wh: Warehouse, contrast_ids: list[str], color_by: str) -> Colouring:
    """`contrast_labels` as a Colouring (with the slug its plots' file names carry)."""
    labels, legend = contrast_labels(wh, contrast_ids, color_by)
    return Colouring(labels, legend, _slug(color_by))


def contrast_labels(
    wh: Warehouse, contrast_ids: list[str], color_by: str = "top_go"
) -> tuple[list[str | None], str]:
    """A label per contrast for colouring a plot, and the legend title.

    "top_go": the contrast's enriched term that is enriched in the most contrasts overall. A GO
    ID or exact term name: "enriched" where that term is. Otherwise a column of core.contrasts or
    core.datasets (gse, group_key, species, ...). None means no label (drawn grey).
    """
    if color_by == "top_go":
        rows = wh.rows(TOP_GO)
        by_id = {c: f"{name} ({go_id})" if name else go_id for c, go_id, name, _ in rows}
        return [by_id.get(c) for c in contrast_ids], "most common enriched GO term"
    term = wh.one(TERM_LOOKUP, {"term": color_by})
    if term is not None:
        go_id, name = term
        enriched = {r[0] for r in wh.rows(TERM_ENRICHED, {"go_id": go_id})}
        labels = ["enriched" if c in enriched else None for c in contrast_ids]
        return labels, f"{name or go_id} ({go_id})"
    with wh.session():
        contrasts = wh.arrow(CONTRAST_ATTRIBUTES)
        datasets = wh.arrow(DATASET_ATTRIBUTES)
    if color_by in contrasts.column_names and color_by != "contrast_id":
        keys, table, key = contrast_ids, contrasts, "contrast_id"
    elif color_by in datasets.column_names:
        gse_of = _column_map(contrasts, "contrast_id", "gse")
        keys, table, key = [gse_of.get(c) for c in contrast_ids], datasets, "gse"
    else:
        names = dict.fromkeys(contrasts.column_names[1:] + datasets.column_names)
        raise ReduceError(
            f"--color-by {color_by!r} is neither 'top_go', a GO term in core.go_terms, nor a "
            f"contrast or dataset attribute ({', '.join(names)})"
        )
    values = _column_map(table, key, color_by)
    return [None if values.get(k) is None else str(values[k]) for k in keys], color_by


def _column_map(table: pa.Table, key: str, value: str) -> dict:
    keys, values = table.column(key).to_pylist(), table.column(value).to_pylist()
    return dict(zip(keys, values, strict=True))


def run_identifier(config: ReduceConfig, contrast_ids: list[str], x: np.ndarray) -> str:
    """`reduce-<hash>` of the settings that change coordinates and of the input matrix."""
    settings = {k: v for k, v in asdict(config).items() if k not in ("color_by", "model")}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    digest.update("\n".join(contrast_ids).encode())
    digest.update(np.asarray(x.shape, dtype=np.int64).tobytes())
    digest.update(np.nansum(x, axis=0, dtype=np.float64).round(6).tobytes())
    return f"reduce-{digest.hexdigest()[:12]}"


# --- writing -----------------------------------------------------------------------------------


def store_space(wh: Warehouse, space: Space) -> None:
    """Replace each method's coordinates of the space's owner in ml.embeddings."""
    for method, coords in space.coords.items():
        rows = embedding_rows(space.owner, method, space.contrasts, coords)
        wh.replace_rows("ml.embeddings", rows, where={"model_id": space.owner, "method": method})


def embedding_rows(
    model_id: str, method: str, contrasts: Contrasts, coords: np.ndarray
) -> pa.Table:
    coords = np.ascontiguousarray(coords, dtype=np.float32)
    offsets = np.arange(0, coords.size + 1, coords.shape[1], dtype=np.int32)
    return pa.table(
        {
            "model_id": pa.array([model_id] * len(contrasts.ids), pa.string()),
            "method": pa.array([method] * len(contrasts.ids), pa.string()),
            "contrast_id": pa.array(contrasts.ids, pa.string()),
            "split": pa.array(contrasts.splits, pa.string()),
            "coords": pa.ListArray.from_arrays(pa.array(offsets), pa.array(coords.ravel())),
        }
    )


def store_checks(wh: Warehouse, rows: list[dict]) -> None:
    """Replace the run's checks in ml.validation (every method of each check named in `rows`)."""
    run_ids = sorted({r["model_id"] for r in rows})
    checks = sorted({r["check_name"] for r in rows})
    with wh.transaction():
        wh.delete("ml.validation", {"model_id": run_ids, "check_name": checks})
        wh.insert("ml.validation", pa.Table.from_pylist(rows))


def validation_rows(
    run_id: str, config: ReduceConfig, pca: PCASummary, n_kept: int, n_genes: int
) -> list[dict]:
    """The explained variance per component, the components each level needs, genes kept."""
    rows = [
        {
            "check_name": "pca_explained_variance",
            "method": f"PC{i + 1}",
            "value": float(r),
            "n": i + 1,
            "detail": None,
        }
        for i, r in enumerate(pca.explained_variance_ratio)
    ]
    rows += [
        {
            "check_name": "pca_components_for_variance",
            "method": f"{level:.0%}",
            "value": None if n is None else float(n),
            "n": n,
            "detail": None if pca.full_spectrum else "spectrum limited to the computed components",
        }
        for level, n in pca.components_for.items()
    ]
    rows.append(
        {
            "check_name": "variance_threshold",
            "method": "genes_kept",
            "value": float(n_kept),
            "n": n_genes,
            "detail": json.dumps(
                {"config": asdict(config), "created_at": datetime.now(UTC).isoformat()}
            ),
        }
    )
    return [{"model_id": run_id, **r} for r in rows]


def write_figures(
    out_dir: Path, spaces: list[Space], result: ReduceResult, config: ReduceConfig
) -> None:
    """The variance plot, one scatter plot per space, method and colouring, and
    `reduce_summary.json`, in `out_dir`; their paths go to `result.figures`."""
    from degae_tools import plots

    out_dir.mkdir(parents=True, exist_ok=True)
    ratio = result.pca.explained_variance_ratio
    path = out_dir / "pca_explained_variance.png"
    result.figures.append(_save(plots.plot_explained_variance(ratio), path))
    for space in spaces:
        for method, coords in space.coords.items():
            for c in space.colourings:
                fig = plots.plot_embedding(
                    coords[:, :2],
                    c.labels,
                    f"{METHOD_NAMES[method]} of {space.subject}",
                    axis_labels=_axis_labels(method, space.pca),
                    legend_title=c.legend,
                )
                path = out_dir / f"{space.prefix}{method}_{c.slug}.png"
                result.figures.append(_save(fig, path))
    summary = {
        **result.summary(),
        "config": asdict(config),
        "explained_variance_ratio": ratio[:100].tolist(),
        "notes": result.notes,
    }
    (out_dir / "reduce_summary.json").write_text(json.dumps(summary, indent=2))


def _axis_labels(method: str, pca: PCASummary | None) -> tuple[str, str]:
    if method == "pca" and pca is not None:
        r = pca.explained_variance_ratio
        return f"PC1 ({r[0]:.1%} of variance)", f"PC2 ({r[1]:.1%})"
    if method.endswith("pca"):
        return "PC1", "PC2"
    name = METHOD_NAMES[method.removeprefix("latent_")]
    return f"{name} 1", f"{name} 2"


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.savefig(path)
    plt.close(fig)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower() or "x"
