"""The baselines of the field beside every autoencoder (BioBombe, Way et al. 2020): PCA, FastICA
and NMF at the autoencoder's latent size, fitted on the training split, and the reconstruction
score (MSE and R² in standardised units) every method is measured by.

PCA and FastICA read the standardised values, as the autoencoder's loss does. NMF needs values
that are not negative, so it reads the magnitude representation: |value| (clipped as the
model's) of the kept genes, each divided by its training root mean square (scaled, never
shifted, so nothing turns negative; the sign is dropped, not clipped). Its reconstruction is
scored in the standardised units of |value|: the model's own units when the model reads
magnitudes (method `nmf`); for a model that reads signed values it reconstructs another target,
stored as `nmf_magnitude` and not comparable with the signed rows.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from degae_tools.models.config import BASELINES
from degae_tools.models.training import rebatch
from degae_tools.preprocess import Preprocessor

if TYPE_CHECKING:
    from degae_tools.models.autoencoder import LinearPath

# PCA holds the standardised training rows in memory up to this size, else runs incrementally;
# FastICA and NMF fit on at most this much (every n-th training row beyond it).
IN_MEMORY_BYTES = 2 * 1024**3
# FastICA and NMF iterate over rows × genes × components; beyond this many (about a minute of
# sklearn on two cores) they are skipped and the reason recorded.
ITERATIVE_CELLS = 5e9
EVAL_BLOCK_ROWS = 256

Blocks = Callable[[], Iterable[np.ndarray]]


@dataclass
class ReconstructionScores:
    """Streaming sums for MSE and pooled R² in standardised units."""

    sse: float = 0.0
    n: int = 0
    col_sum: np.ndarray | None = None
    col_sumsq: np.ndarray | None = None

    def add(self, truth: np.ndarray, estimate: np.ndarray) -> None:
        truth = truth.astype(np.float64)
        self.sse += float(((truth - estimate) ** 2).sum())
        self.n += len(truth)
        if self.col_sum is None:
            self.col_sum = np.zeros(truth.shape[1])
            self.col_sumsq = np.zeros(truth.shape[1])
        self.col_sum += truth.sum(axis=0)
        self.col_sumsq += (truth**2).sum(axis=0)

    def result(self) -> tuple[float, float]:
        """(MSE, R²): R² = 1 - SSE / SST, SST about each gene's mean on this split, pooled over
        genes (sklearn's r2_score with multioutput='variance_weighted')."""
        if self.n == 0 or self.col_sum is None:
            return math.nan, math.nan
        sst = float((self.col_sumsq - self.col_sum**2 / self.n).sum())
        mse = self.sse / (self.n * len(self.col_sum))
        return mse, (1.0 - self.sse / sst) if sst > 0 else math.nan


@dataclass
class Baseline:
    """A fitted linear method: `view` maps raw rows to what it reads, `truth` to the units it is
    scored in, and `to_units` its reconstruction (in its own view) to those units."""

    method: str
    latent_dim: int
    model: Any
    view: Callable[[np.ndarray], np.ndarray]
    truth: Callable[[np.ndarray], np.ndarray]
    to_units: Callable[[np.ndarray], np.ndarray] = lambda y: y

    def reconstruct(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(truth, estimate) of raw rows `x`, in the scored units. NMF's transform iterates as
        its fit does, within the same cap; its code is scored as reached, without a warning."""
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            y = self.model.inverse_transform(self.model.transform(self.view(x)))
        return self.truth(x), self.to_units(y)


@dataclass
class BaselineFits:
    """The baselines fitted, and why any asked for was not."""

    fitted: list[Baseline] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def fit_baselines(
    train: Blocks,
    n_train: int,
    preprocessor: Preprocessor,
    latent_dim: int,
    seed: int,
    methods: Sequence[str] = BASELINES,
) -> BaselineFits:
    """PCA, FastICA and NMF (those in `methods`) with min(latent_dim, rows, genes) components,
    fitted on the raw training blocks `train()`."""
    k = min(latent_dim, n_train, preprocessor.n_features)
    out = BaselineFits()
    if "pca" in methods:
        out.fitted.append(fit_pca(train, n_train, preprocessor, k, seed))
    iterative = [m for m in ("ica", "nmf") if m in methods]
    if not iterative:
        return out
    x = _training_sample(train, n_train, preprocessor.n_genes)
    cells = len(x) * preprocessor.n_features * k
    for method in iterative:
        if cells > ITERATIVE_CELLS:
            out.skipped[method] = (
                f"{len(x)} rows x {preprocessor.n_features} genes x {k} components is over "
                f"{ITERATIVE_CELLS:.0e}; fit it on a smaller collection or fewer components"
            )
            continue
        fit = fit_ica if method == "ica" else fit_nmf
        out.fitted.append(fit(x, preprocessor, k, seed))
    return out


def fit_pca(train: Blocks, n_train: int, preprocessor: Preprocessor, k: int, seed: int) -> Baseline:
    """PCA of the standardised training rows; incremental when they would not fit in memory."""
    pca = _pca(train, n_train, preprocessor.n_features, preprocessor.standardise, k, seed)
    return Baseline("pca", k, pca, preprocessor.standardise, preprocessor.standardise)


def principal_axes(
    train: Blocks, n_train: int, preprocessor: Preprocessor, k: int, seed: int
) -> LinearPath:
    """The top-k principal axes and the mean of the training rows as the model reads them
    (`preprocessor.transform`): the residual autoencoder's frozen linear path."""
    from degae_tools.models.autoencoder import LinearPath

    k = min(k, n_train, preprocessor.n_features)
    pca = _pca(train, n_train, preprocessor.n_features, preprocessor.transform, k, seed)
    return LinearPath(pca.components_.astype(np.float32), pca.mean_.astype(np.float32))


def _pca(train: Blocks, n_train: int, n_features: int, view: Callable, k: int, seed: int) -> Any:
    """sklearn's PCA of `view` of the training rows, or IncrementalPCA beyond IN_MEMORY_BYTES."""
    from sklearn.decomposition import PCA, IncrementalPCA

    if n_train * n_features * 4 <= IN_MEMORY_BYTES:
        z = np.concatenate([view(x) for x in train()])
        return PCA(n_components=k, random_state=seed).fit(z)
    pca = IncrementalPCA(n_components=k)
    for x in rebatch(train(), max(k, 1024)):
        if len(x) >= k:
            pca.partial_fit(view(x))
    return pca


def fit_ica(x: np.ndarray, preprocessor: Preprocessor, k: int, seed: int) -> Baseline:
    """FastICA (unit-variance whitening) of the standardised training rows."""
    from sklearn.decomposition import FastICA
    from sklearn.exceptions import ConvergenceWarning

    ica = FastICA(n_components=k, whiten="unit-variance", random_state=seed, max_iter=400)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ica.fit(preprocessor.standardise(x))
    return Baseline("ica", k, ica, preprocessor.standardise, preprocessor.standardise)


def fit_nmf(x: np.ndarray, preprocessor: Preprocessor, k: int, seed: int) -> Baseline:
    """NMF of |value| of the kept genes, each divided by its training root mean square."""
    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning

    magnitude = np.abs(preprocessor.clipped(x)[:, preprocessor.keep])
    rms = np.sqrt((magnitude.astype(np.float64) ** 2).mean(axis=0))
    rms = np.where(rms > 0, rms, 1.0).astype(np.float32)
    if preprocessor.magnitude:
        mean, scale, method = preprocessor.mean, preprocessor.scale, "nmf"
    else:
        std = magnitude.std(axis=0, dtype=np.float64)
        mean = magnitude.mean(axis=0, dtype=np.float64).astype(np.float32)
        scale, method = np.where(std > 0, std, 1.0).astype(np.float32), "nmf_magnitude"

    def view(rows: np.ndarray) -> np.ndarray:
        return np.abs(preprocessor.clipped(rows)[..., preprocessor.keep]) / rms

    def truth(rows: np.ndarray) -> np.ndarray:
        return (np.abs(preprocessor.clipped(rows)[..., preprocessor.keep]) - mean) / scale

    nmf = NMF(n_components=k, init="nndsvda", random_state=seed, max_iter=400)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        nmf.fit(magnitude / rms)
    return Baseline(method, k, nmf, view, truth, lambda y: (y * rms - mean) / scale)


def score_split(
    blocks: Iterable[np.ndarray],
    preprocessor: Preprocessor,
    autoencoder: Callable[[np.ndarray], Any] | None,
    baselines: Sequence[Baseline],
) -> dict[str, tuple[float, float]]:
    """{method: (MSE, R²)} on one split's raw blocks: the autoencoder (called on the model's
    inputs) and each baseline, in one pass."""
    methods = (["autoencoder"] if autoencoder is not None else []) + [b.method for b in baselines]
    scores = {method: ReconstructionScores() for method in methods}
    for x in rebatch(blocks, EVAL_BLOCK_ROWS):
        if autoencoder is not None:
            y = np.asarray(autoencoder(preprocessor.transform(x)), dtype=np.float64)
            scores["autoencoder"].add(preprocessor.standardise(x), preprocessor.to_standardised(y))
        for baseline in baselines:
            scores[baseline.method].add(*baseline.reconstruct(x))
    return {method: s.result() for method, s in scores.items()}


def _training_sample(train: Blocks, n_train: int, n_genes: int) -> np.ndarray:
    """The raw training rows, or every n-th of them when they exceed IN_MEMORY_BYTES."""
    step = max(1, math.ceil(n_train * n_genes * 4 / IN_MEMORY_BYTES))
    rows, seen = [], 0
    for x in train():
        take = (np.arange(seen, seen + len(x)) % step) == 0
        rows.append(x[take])
        seen += len(x)
    return np.concatenate(rows) if rows else np.zeros((0, n_genes), np.float32)
