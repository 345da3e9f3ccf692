"""Preprocessing fit on the training split only, in one streaming pass, saved beside the model:
values clipped to ±clip (0: none), optionally |value| (the magnitude representation),
VarianceThreshold on the values, StandardScaler on the kept genes, optional min-max to [0, 1]
(the study's sigmoid output).
Exposed as NumPy and as a differentiable TensorFlow op.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from degae_tools.errors import ModelError

if TYPE_CHECKING:
    import tensorflow as tf

    from degae_tools.models.config import DataConfig


@dataclass
class RunningMoments:
    """Per-gene count, mean, sum of squared deviations, min and max, merged batch by batch
    (Chan, Golub & LeVeque 1979 pairwise update of Welford's M2), in float64."""

    n: int
    mean: np.ndarray
    m2: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def empty(cls, n_genes: int) -> RunningMoments:
        """Moments of no rows."""
        return cls(
            0,
            np.zeros(n_genes),
            np.zeros(n_genes),
            np.full(n_genes, np.inf),
            np.full(n_genes, -np.inf),
        )

    def update(self, x: np.ndarray) -> None:
        """Merge the rows of `x` (rows × genes)."""
        if len(x) == 0:
            return
        x = np.asarray(x, dtype=np.float64)
        n_b = len(x)
        mean_b = x.mean(axis=0)
        m2_b = ((x - mean_b) ** 2).sum(axis=0)
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + delta**2 * (self.n * n_b / n)
        self.n = n
        self.lo = np.minimum(self.lo, x.min(axis=0))
        self.hi = np.maximum(self.hi, x.max(axis=0))

    @property
    def variance(self) -> np.ndarray:
        """Population variance (ddof=0, as sklearn's VarianceThreshold and StandardScaler)."""
        return self.m2 / max(self.n, 1)


class Preprocessor:
    """Gene selection by variance, standardisation, and optional min-max, fit on training rows."""

    def __init__(
        self,
        variance_threshold: float | None = None,
        minmax: bool = False,
        magnitude: bool = False,
        clip: float = 0.0,
    ) -> None:
        self.variance_threshold = variance_threshold
        self.minmax = minmax
        self.magnitude = magnitude
        self.clip = float(clip)
        self.n_genes = 0
        self.n_samples = 0
        self.keep = np.zeros(0, dtype=np.int64)
        self.mean = np.zeros(0, dtype=np.float32)
        self.scale = np.zeros(0, dtype=np.float32)
        self.z_min = np.zeros(0, dtype=np.float32)
        self.z_range = np.zeros(0, dtype=np.float32)

    @classmethod
    def for_data(cls, data: DataConfig) -> Preprocessor:
        """An unfitted Preprocessor with the config's threshold, min-max, representation, clip."""
        magnitude = data.representation == "magnitude"
        return cls(data.variance_threshold, data.minmax, magnitude, data.clip_limit)

    @property
    def n_features(self) -> int:
        """Genes the model sees (after the variance threshold)."""
        return len(self.keep)

    def fit(self, batches: Iterable[np.ndarray]) -> Preprocessor:
        """Fit from a stream of raw (rows × all genes) training blocks, one pass."""
        moments: RunningMoments | None = None
        for x in batches:
            if moments is None:
                moments = RunningMoments.empty(x.shape[1])
            moments.update(self.represent(x))
        if moments is None or moments.n == 0:
            raise ModelError("cannot fit preprocessing: the training split has no rows")
        return self.fit_moments(moments)

    def fit_moments(self, moments: RunningMoments) -> Preprocessor:
        """Fit from per-gene moments of `represent(x)` gathered elsewhere (e.g. while spilling)."""
        variance = moments.variance
        self.n_genes = len(variance)
        self.n_samples = moments.n
        if self.variance_threshold is None:
            self.keep = np.arange(self.n_genes)
        else:
            # sklearn's VarianceThreshold keeps features with variance strictly above the threshold.
            self.keep = np.flatnonzero(variance > self.variance_threshold)
        if len(self.keep) == 0:
            raise ModelError(
                f"variance threshold {self.variance_threshold} removes every gene "
                f"(largest variance {variance.max():.3g})"
            )
        std = np.sqrt(variance[self.keep])
        scale = np.where(std > 0, std, 1.0)  # sklearn: constant features are left unscaled
        self.mean = moments.mean[self.keep].astype(np.float32)
        self.scale = scale.astype(np.float32)
        z_lo = (moments.lo[self.keep] - moments.mean[self.keep]) / scale
        z_hi = (moments.hi[self.keep] - moments.mean[self.keep]) / scale
        span = z_hi - z_lo
        self.z_min = z_lo.astype(np.float32)
        self.z_range = np.where(span > 0, span, 1.0).astype(np.float32)
        return self

    def clipped(self, x: np.ndarray) -> np.ndarray:
        """Raw values clipped to ±clip (as they are when clip is 0), float32."""
        x = np.asarray(x, dtype=np.float32)
        return np.clip(x, -self.clip, self.clip) if self.clip > 0 else x

    def represent(self, x: np.ndarray) -> np.ndarray:
        """Raw values as the model reads them: clipped, then themselves or their magnitude."""
        x = self.clipped(x)
        return np.abs(x) if self.magnitude else x

    def standardise(self, x: np.ndarray) -> np.ndarray:
        """Raw log2FC (rows × all genes) to standardised kept genes."""
        self._check_width(x.shape[-1])
        return (self.represent(x)[..., self.keep] - self.mean) / self.scale

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Raw log2FC (rows × all genes) to the model's input space."""
        z = self.standardise(x)
        return (z - self.z_min) / self.z_range if self.minmax else z

    def to_standardised(self, y: np.ndarray) -> np.ndarray:
        """The model's input/output space back to standardised units (undo min-max)."""
        return y * self.z_range + self.z_min if self.minmax else y

    def tf_transform(self, x: tf.Tensor) -> tf.Tensor:
        """`transform` as a differentiable TensorFlow op (gradients reach every input gene)."""
        import tensorflow as tf

        x = tf.cast(x, tf.float32)
        if self.clip > 0:
            x = tf.clip_by_value(x, -self.clip, self.clip)
        if self.magnitude:
            x = tf.abs(x)
        if len(self.keep) != self.n_genes:  # no copy through gather when every gene is kept
            x = tf.gather(x, self.keep, axis=-1)
        z = (x - self.mean) / self.scale
        return (z - self.z_min) / self.z_range if self.minmax else z

    def _check_width(self, width: int) -> None:
        if width != self.n_genes:
            raise ModelError(
                f"input has {width} genes, the preprocessing was fit on {self.n_genes}"
            )

    def save(self, path: Path) -> None:
        """Write the fitted state to an `.npz` file."""
        np.savez(
            path,
            variance_threshold=np.nan
            if self.variance_threshold is None
            else self.variance_threshold,
            minmax=self.minmax,
            magnitude=self.magnitude,
            clip=self.clip,
            n_genes=self.n_genes,
            n_samples=self.n_samples,
            keep=self.keep,
            mean=self.mean,
            scale=self.scale,
            z_min=self.z_min,
            z_range=self.z_range,
        )

    @classmethod
    def load(cls, path: Path) -> Preprocessor:
        """Read a preprocessor written by `save`."""
        if not Path(path).exists():
            raise ModelError(f"{path}: no preprocessing file (expected preprocess.npz)")
        with np.load(path) as f:
            threshold = float(f["variance_threshold"])
            magnitude = bool(f["magnitude"]) if "magnitude" in f.files else False
            clip = float(f["clip"]) if "clip" in f.files else 0.0  # older models: no clip
            p = cls(None if np.isnan(threshold) else threshold, bool(f["minmax"]), magnitude, clip)
            p.n_genes = int(f["n_genes"])
            p.n_samples = int(f["n_samples"])
            p.keep = f["keep"]
            p.mean, p.scale = f["mean"], f["scale"]
            p.z_min, p.z_range = f["z_min"], f["z_range"]
        return p
