"""Dimension-reduction baselines: VarianceThreshold, PCA and t-SNE (and UMAP) of the log2FC matrix.

The reference study looked at PCA and t-SNE of its compendium coloured by the most common GO term
and noted that the first two PCs explain only ~4.4% of the variance; `reduce` gives the same
pictures and the same figure for whatever compendium the warehouse holds, and projects an
autoencoder's latent code the same way.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import scipy.linalg
from sklearn.decomposition import PCA
from sklearn.feature_selection import VarianceThreshold
from sklearn.manifold import TSNE
from sklearn.preprocessing import StandardScaler

from degae_tools import console
from degae_tools.errors import ModelError, ReduceError
from warehouse.connect import connect, transaction
from warehouse.export import (
    SPLITS,
    batch_matrix,
    ensure_split,
    iter_log2fc_batches,
    split_contrasts,
)
from warehouse.migrate import read_query

VARIANCE_LEVELS = (0.5, 0.8, 0.9)
FULL_SPECTRUM_MAX = 10_000
EXACT_TSNE_MAX = 250
BATCH_ROWS = 256
# bench/results/tsne.json: openTSNE takes 0.33-0.66x scikit-learn's time from 1,000 points.
OPENTSNE_MIN = 1_000
STUDY_FIRST_TWO_PCS = 0.044
METHOD_NAMES = {
    "pca": "PCA",
    "tsne": "t-SNE",
    "umap": "UMAP",
    "latent_pca": "PCA of the latent code",
    "latent_tsne": "t-SNE of the latent code",
    "latent_umap": "UMAP of the latent code",
}


@dataclass(frozen=True)
class ReduceConfig:
    """How `reduce` runs; defaults are the reference study's (VarianceThreshold 1.0, perplexity 50).

    `variance_threshold` None keeps every gene. `model` names the autoencoder whose latent code is
    projected (None: the newest model with one). `color_by` is "top_go", a GO ID or name, or a
    column of core.contrasts / core.datasets. `tsne_backend` "auto" takes openTSNE where it is
    installed and measured faster (bench/tsne.py), scikit-learn otherwise.
    """

    variance_threshold: float | None = 1.0
    pca_components: int = 50
    perplexity: float = 50.0
    umap: bool = False
    seed: int = 69
    color_by: str = "top_go"
    model: str | None = None
    tsne_backend: str = "auto"


@dataclass(frozen=True)
class PCASummary:
    """Variance explained per component (the full spectrum when it was affordable)."""

    explained_variance_ratio: np.ndarray
    components_for: dict[float, int | None]
    full_spectrum: bool

    @property
    def first_two(self) -> float:
        """Fraction of the variance explained by PC1 and PC2 together."""
        return float(self.explained_variance_ratio[:2].sum())


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


def reduce(
    db_path: str | Path, config: ReduceConfig = ReduceConfig(), out_dir: str | Path = "figures"
) -> ReduceResult:
    """Run VarianceThreshold -> PCA -> t-SNE (-> UMAP) on the log2FC matrix and store the results.

    Coordinates go to ml.embeddings under a run ID `reduce-<hash>` (same data and config, same
    ID); explained variance to ml.validation; scatter plots and the variance plot to `out_dir`.
    """
    from degae_tools import plots

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    contrast_ids, splits, x = read_log_fc(db_path)
    con = connect(db_path)
    try:
        latent_model = _latent_model(con, config.model)
        latent = _read_latent(con, latent_model) if latent_model else None
        colour_specs = ["top_go"] + ([config.color_by] if config.color_by != "top_go" else [])
        colourings = [(*contrast_labels(con, contrast_ids, c), _slug(c)) for c in colour_specs]
        latent_colourings = []
        if latent is not None:
            latent_colourings = [
                (*contrast_labels(con, latent[0], c), _slug(c)) for c in colour_specs
            ]
    finally:
        con.close()
    if len(contrast_ids) < 3:
        raise ReduceError(
            f"reduce needs at least 3 contrasts with DE results, the warehouse has "
            f"{len(contrast_ids)}: run `degae-tools de` first"
        )
    run_id = run_identifier(config, contrast_ids, x)
    notes: list[str] = []

    console.say(f"VarianceThreshold({config.variance_threshold}) on {x.shape[1]:,} genes")
    keep = select_genes(x, config.variance_threshold)
    z = StandardScaler(copy=False).fit_transform(x[:, keep])
    del x
    console.say(f"PCA on {len(contrast_ids):,} contrasts x {z.shape[1]:,} genes")
    pca_scores, pca_summary = principal_components(z, config.pca_components, config.seed)
    del z
    embeddings: dict[str, np.ndarray] = {"pca": pca_scores}
    console.say(f"t-SNE (perplexity {config.perplexity:g}, {config.tsne_backend})")
    embeddings["tsne"], used = tsne(pca_scores, config.perplexity, config.seed, config.tsne_backend)
    if used != config.perplexity:
        notes.append(f"t-SNE perplexity lowered to {used:g}: only {len(contrast_ids)} contrasts")
    if config.umap:
        umap_coords = run_umap(pca_scores, config.seed)
        if umap_coords is None:
            notes.append("umap-learn is not installed: UMAP skipped (pip install umap-learn)")
        else:
            embeddings["umap"] = umap_coords

    latent_embeddings: dict[str, np.ndarray] = {}
    if latent is not None:
        codes = latent[2]
        console.say(f"projecting the latent code of {latent_model} ({codes.shape[1]} dimensions)")
        latent_embeddings["latent_pca"] = PCA(2, random_state=config.seed).fit_transform(codes)
        latent_embeddings["latent_tsne"], _ = tsne(
            codes, config.perplexity, config.seed, config.tsne_backend
        )
    elif config.model is None:
        notes.append("no autoencoder latent code in ml.embeddings yet: latent projection skipped")

    _store(
        db_path,
        run_id,
        contrast_ids,
        splits,
        embeddings,
        latent_model,
        latent,
        latent_embeddings,
        _validation_rows(run_id, config, pca_summary, int(keep.sum()), len(keep)),
    )

    ratio = pca_summary.explained_variance_ratio
    figures = [_save(plots.plot_explained_variance(ratio), out_dir / "pca_explained_variance.png")]
    figures += _scatter_files(
        out_dir, "", embeddings, colourings, f"{len(contrast_ids):,} contrasts", pca_summary
    )
    if latent_model is not None:
        prefix = f"{_slug(latent_model)}_"
        figures += _scatter_files(
            out_dir, prefix, latent_embeddings, latent_colourings, latent_model, None
        )

    result = ReduceResult(
        run_id=run_id,
        n_contrasts=len(contrast_ids),
        n_genes=len(keep),
        n_genes_kept=int(keep.sum()),
        pca=pca_summary,
        methods=list(embeddings) + list(latent_embeddings),
        latent_model=latent_model,
        figures=figures,
        notes=notes,
    )
    (out_dir / "reduce_summary.json").write_text(
        json.dumps(
            {
                **result.summary(),
                "config": asdict(config),
                "explained_variance_ratio": pca_summary.explained_variance_ratio[:100].tolist(),
                "notes": notes,
            },
            indent=2,
        )
    )
    return result


def read_log_fc(
    db_path: str | Path, split_name: str = "degae"
) -> tuple[list[str], list[str], np.ndarray]:
    """(contrast IDs, their split, float32 log2FC matrix) of every contrast with DE results.

    Rows come from `warehouse.export` (genes without a result are 0.0, as the trainer sees them);
    the series-wise split is created first if the warehouse has none, so that coordinates carry it.
    """
    con = connect(db_path, write=True)
    try:
        ensure_split(con, split_name)
    finally:
        con.close()
    con = connect(db_path)
    try:
        n_batches = math.ceil(len(split_contrasts(con, split_name, SPLITS)) / BATCH_ROWS)
        batches = iter_log2fc_batches(con, split_name, SPLITS, batch_size=BATCH_ROWS)
        ids: list[str] = []
        splits: list[str] = []
        parts: list[np.ndarray] = []
        for batch in console.progress(batches, total=n_batches, description="reading log2FC"):
            ids.extend(batch.column("contrast_id").to_pylist())
            splits.extend(batch.column("split").to_pylist())
            parts.append(batch_matrix(batch))
    finally:
        con.close()
    x = np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
    return ids, splits, x


def select_genes(x: np.ndarray, threshold: float | None) -> np.ndarray:
    """Boolean mask of the genes whose log2FC variance exceeds `threshold` (None: all genes).

    The study applied VarianceThreshold after StandardScaler, where every variance is 1 up to
    rounding; here it runs on the unscaled log2FC so that the threshold selects genes on purpose.
    """
    if threshold is None:
        return np.ones(x.shape[1], dtype=bool)
    try:
        keep = VarianceThreshold(threshold).fit(x).get_support()
    except ValueError:  # scikit-learn refuses a threshold that no feature meets
        keep = np.zeros(x.shape[1], dtype=bool)
    if keep.sum() < 2:
        top = float(np.var(x, axis=0).max()) if x.shape[1] else float("nan")
        raise ReduceError(
            f"variance threshold {threshold:g} keeps {int(keep.sum())} of {x.shape[1]} genes "
            f"(largest log2FC variance {top:.3g}): pass a lower --variance-threshold"
        )
    return keep


def variance_spectrum(z: np.ndarray) -> np.ndarray:
    """Fraction of variance on every principal component of centred `z`, largest first.

    Eigenvalues of the Gram matrix Z Z^T (or Z^T Z, whichever is smaller) equal n-1 times the
    component variances, and its trace is n-1 times the total variance.
    """
    z = z - z.mean(axis=0)
    gram = z @ z.T if z.shape[0] <= z.shape[1] else z.T @ z
    eigenvalues = np.clip(scipy.linalg.eigvalsh(gram.astype(np.float64)), 0, None)[::-1]
    return eigenvalues / eigenvalues.sum()


def components_for(ratio: np.ndarray, levels: tuple[float, ...] = VARIANCE_LEVELS) -> dict:
    """Number of leading components whose cumulative variance reaches each level (None: never)."""
    cumulative = np.cumsum(ratio)
    found = {}
    for level in levels:
        reached = np.flatnonzero(cumulative >= level - 1e-9)
        found[level] = int(reached[0]) + 1 if reached.size else None
    return found


def principal_components(
    z: np.ndarray, n_components: int, seed: int
) -> tuple[np.ndarray, PCASummary]:
    """PCA scores (n x k) of standardised `z`, and the variance explained per component."""
    k = min(n_components, z.shape[0] - 1, z.shape[1])
    pca = PCA(n_components=k, random_state=seed)
    scores = pca.fit_transform(z).astype(np.float32)
    if min(z.shape) <= FULL_SPECTRUM_MAX:
        ratio, full = variance_spectrum(z)[: min(z.shape[0] - 1, z.shape[1])], True
    else:
        ratio, full = pca.explained_variance_ratio_, False
    return scores, PCASummary(np.asarray(ratio), components_for(ratio), full)


def tsne(
    x: np.ndarray, perplexity: float, seed: int, backend: str = "auto"
) -> tuple[np.ndarray, float]:
    """2-D t-SNE of the rows of `x` and the perplexity used (lowered for tiny inputs).

    backend: "sklearn", "opentsne", or "auto" (openTSNE from OPENTSNE_MIN rows when installed).
    """
    used = float(min(perplexity, max((x.shape[0] - 1) / 3, 1.0)))
    if backend == "auto":
        backend = "opentsne" if x.shape[0] >= OPENTSNE_MIN and _has_opentsne() else "sklearn"
    if backend == "opentsne":
        try:
            import openTSNE
        except ImportError as exc:
            raise ReduceError("tsne_backend 'opentsne' needs `pip install openTSNE`") from exc
        embedding = openTSNE.TSNE(perplexity=used, random_state=seed, n_jobs=-1).fit(x)
        return np.asarray(embedding, dtype=np.float32), used
    if backend != "sklearn":
        raise ReduceError(
            f"unknown tsne_backend {backend!r}: expected 'auto', 'sklearn' or 'opentsne'"
        )
    # Exact gradients beat Barnes-Hut on a few hundred points and avoid its OpenMP thread pool.
    method = "exact" if x.shape[0] <= EXACT_TSNE_MAX else "barnes_hut"
    model = TSNE(
        n_components=2,
        perplexity=used,
        init="pca",
        learning_rate="auto",
        method=method,
        random_state=seed,
    )
    return model.fit_transform(x).astype(np.float32), used


def _has_opentsne() -> bool:
    try:
        import openTSNE  # noqa: F401
    except ImportError:
        return False
    return True


def run_umap(x: np.ndarray, seed: int) -> np.ndarray | None:
    """2-D UMAP of the rows of `x`, or None when umap-learn is not installed."""
    try:
        import umap
    except ImportError:
        return None
    n_neighbors = int(min(15, max(x.shape[0] - 1, 2)))
    model = umap.UMAP(n_components=2, n_neighbors=n_neighbors, random_state=seed)
    return model.fit_transform(x).astype(np.float32)


def contrast_labels(
    con: duckdb.DuckDBPyConnection, contrast_ids: list[str], color_by: str = "top_go"
) -> tuple[list[str | None], str]:
    """A label per contrast for colouring a plot, and the legend title.

    "top_go": the contrast's enriched term that is enriched in the most contrasts overall. A GO
    ID or exact term name: "enriched" where that term is. Otherwise a column of core.contrasts or
    core.datasets (gse, group_key, species, ...). None means no label (drawn grey).
    """
    if color_by == "top_go":
        rows = con.execute(read_query("reduce/top_go")).fetchall()
        by_id = {c: f"{name} ({go_id})" if name else go_id for c, go_id, name, _ in rows}
        return [by_id.get(c) for c in contrast_ids], "most common enriched GO term"
    terms = con.execute(read_query("reduce/term_lookup"), [color_by]).fetchall()
    if terms:
        go_id, name = terms[0]
        rows = con.execute(read_query("reduce/term_enriched"), [go_id]).fetchall()
        enriched = {r[0] for r in rows}
        labels = ["enriched" if c in enriched else None for c in contrast_ids]
        return labels, f"{name or go_id} ({go_id})"
    contrasts = con.sql(read_query("reduce/contrast_attributes")).to_arrow_table()
    datasets = con.sql(read_query("reduce/dataset_attributes")).to_arrow_table()
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
    labels = [None if values.get(k) is None else str(values[k]) for k in keys]
    return labels, color_by


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


def _latent_model(con: duckdb.DuckDBPyConnection, model: str | None) -> str | None:
    """A model id as given, or read from a model directory's config.json, or the latest model."""
    if model is not None and (Path(model) / "config.json").is_file():
        return json.loads((Path(model) / "config.json").read_text())["model_id"]
    if model is not None:
        return model
    rows = con.execute(read_query("reduce/latest_latent_model")).fetchall()
    return rows[0][0] if rows else None


def _read_latent(
    con: duckdb.DuckDBPyConnection, model: str
) -> tuple[list[str], list[str | None], np.ndarray]:
    table = con.sql(read_query("reduce/latent"), params=[model]).to_arrow_table()
    if table.num_rows < 3:
        raise ModelError(
            f"model {model!r} has {table.num_rows} latent codes in ml.embeddings (method "
            f"'latent'); at least 3 are needed: train it with `degae-tools train` first"
        )
    codes = np.array(table.column("coords").to_pylist(), dtype=np.float32)
    return table.column("contrast_id").to_pylist(), table.column("split").to_pylist(), codes


def _validation_rows(
    run_id: str, config: ReduceConfig, pca: PCASummary, n_kept: int, n_genes: int
) -> list[dict]:
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


def _store(
    db_path: str | Path,
    run_id: str,
    contrast_ids: list[str],
    splits: list[str],
    embeddings: dict[str, np.ndarray],
    latent_model: str | None,
    latent: tuple | None,
    latent_embeddings: dict[str, np.ndarray],
    validation: list[dict],
) -> None:
    batches = [(run_id, m, contrast_ids, splits, c) for m, c in embeddings.items()]
    if latent is not None:
        ids, splits, _ = latent
        batches += [(latent_model, m, ids, splits, c) for m, c in latent_embeddings.items()]
    checks = sorted({r["check_name"] for r in validation})
    con = connect(db_path, write=True)
    try:
        with transaction(con):
            for model_id, method, ids, splits, coords in batches:
                con.execute(read_query("reduce/delete_embeddings"), [model_id, method])
                table = _embedding_table(model_id, method, ids, splits, coords)
                con.register("embedding_rows", table)
                con.execute(read_query("reduce/insert_embeddings"))
                con.unregister("embedding_rows")
            for check in checks:
                con.execute(read_query("reduce/delete_validation"), [run_id, check])
            con.register("validation_rows", pa.Table.from_pylist(validation))
            con.execute(read_query("reduce/insert_validation"))
            con.unregister("validation_rows")
    finally:
        con.close()


def _embedding_table(
    model_id: str, method: str, ids: list[str], splits: list, coords: np.ndarray
) -> pa.Table:
    coords = np.ascontiguousarray(coords, dtype=np.float32)
    offsets = np.arange(0, coords.size + 1, coords.shape[1], dtype=np.int32)
    return pa.table(
        {
            "model_id": pa.array([model_id] * len(ids), pa.string()),
            "method": pa.array([method] * len(ids), pa.string()),
            "contrast_id": pa.array(ids, pa.string()),
            "split": pa.array(splits, pa.string()),
            "coords": pa.ListArray.from_arrays(pa.array(offsets), pa.array(coords.ravel())),
        }
    )


def _scatter_files(
    out_dir: Path,
    prefix: str,
    embeddings: dict[str, np.ndarray],
    colourings: list[tuple[list[str | None], str, str]],
    subject: str,
    pca: PCASummary | None,
) -> list[Path]:
    from degae_tools import plots

    paths = []
    for method, coords in embeddings.items():
        for labels, legend, slug in colourings:
            fig = plots.plot_embedding(
                coords[:, :2],
                labels,
                f"{METHOD_NAMES[method]} of {subject}",
                axis_labels=_axis_labels(method, pca),
                legend_title=legend,
            )
            paths.append(_save(fig, out_dir / f"{prefix}{method}_{slug}.png"))
    return paths


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
