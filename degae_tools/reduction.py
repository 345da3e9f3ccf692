"""Dimension reduction of a log2FC matrix: VarianceThreshold, PCA with its variance spectrum,
and 2-D t-SNE (scikit-learn or openTSNE) or UMAP, as plain array functions.

The reference study looked at PCA and t-SNE of its compendium coloured by the most common GO term
and noted that the first two PCs explain only ~4.4% of the variance; `degae_tools.steps.reduce`
gives the same pictures and figure for whatever compendium the warehouse holds. scikit-learn is
imported where it is used, so that the CLI reads `ReduceConfig` without loading it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

from degae_tools.errors import ReduceError

VARIANCE_LEVELS = (0.5, 0.8, 0.9)
FULL_SPECTRUM_MAX = 10_000
EXACT_TSNE_MAX = 250
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


TSNE_BACKENDS = ("auto", "sklearn", "opentsne")


@dataclass(frozen=True)
class ReduceConfig:
    """How `reduce` runs; defaults are the reference study's (VarianceThreshold 1.0, perplexity 50).

    `variance_threshold` None keeps every gene. `model` names the autoencoder whose latent code is
    projected (None: the newest model with one). `color_by` is "top_go", a GO ID or name, or a
    column of core.contrasts / core.datasets. `tsne_backend` "auto" takes openTSNE where it is
    installed and measured faster (bench/tsne.py), scikit-learn otherwise.
    """

    variance_threshold: float | None = field(
        default=1.0,
        metadata={
            "help": "Keep genes whose log2FC variance exceeds this (the study's VarianceThreshold)."
        },
    )
    pca_components: int = field(
        default=50, metadata={"help": "PCA components kept.", "flag": "--components"}
    )
    perplexity: float = field(default=50.0, metadata={"help": "t-SNE perplexity."})
    umap: bool = field(default=False, metadata={"help": "Also UMAP (needs umap-learn)."})
    seed: int = 69
    color_by: str = field(
        default="top_go",
        metadata={
            "help": "top_go, a GO ID or term name, or a contrast/dataset column (gse, "
            "group_key, ...)."
        },
    )
    model: str | None = field(
        default=None,
        metadata={"help": "Autoencoder whose latent code is projected (default: the newest)."},
    )
    tsne_backend: str = field(
        default="auto",
        metadata={
            "help": "auto: openTSNE from 1,000 contrasts when installed (measured faster), "
            "else sklearn.",
            "choices": TSNE_BACKENDS,
        },
    )


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


def select_genes(x: np.ndarray, threshold: float | None) -> np.ndarray:
    """Boolean mask of the genes whose log2FC variance exceeds `threshold` (None: all genes).

    The study applied VarianceThreshold after StandardScaler, where every variance is 1 up to
    rounding; here it runs on the unscaled log2FC so that the threshold selects genes on purpose.
    """
    from sklearn.feature_selection import VarianceThreshold

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
    from sklearn.decomposition import PCA

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
    from sklearn.manifold import TSNE

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
