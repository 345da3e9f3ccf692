"""Figures: functions that take data and return a matplotlib Figure (the caller saves it)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

OTHER_COLOR = "#c9ccd1"
PALETTE = (
    "#1f77b4",
    "#e8590c",
    "#2f9e44",
    "#c2255c",
    "#7048e8",
    "#8c564b",
    "#0c8599",
    "#e67700",
    "#5c940d",
    "#495057",
)


def apply_style() -> None:
    """One look for every degae figure: white background, light grid, no top/right spines."""
    plt.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 110,
            "savefig.bbox": "tight",
            "font.size": 10,
            "axes.titlesize": 11,
            "axes.titleweight": "bold",
            "axes.labelsize": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.color": "#e9ecef",
            "grid.linewidth": 0.8,
            "axes.axisbelow": True,
            "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
            "legend.frameon": False,
            "legend.fontsize": 9,
        }
    )


def plot_embedding(
    coords: np.ndarray,
    labels: Sequence[str | None],
    title: str,
    axis_labels: tuple[str, str] = ("dimension 1", "dimension 2"),
    max_labels: int = 8,
    legend_title: str = "",
) -> Figure:
    """Scatter of 2-D coordinates; the `max_labels` most frequent labels in colour, the rest grey.

    A label of None (no enriched term, no value) is drawn grey as "other / none".
    """
    apply_style()
    coords = np.asarray(coords, dtype=float)
    counts = Counter(label for label in labels if label is not None)
    shown = [label for label, _ in counts.most_common(max_labels)]
    label_array = np.array([label if label in shown else None for label in labels], dtype=object)
    fig, ax = plt.subplots(figsize=(6.4, 6.6))
    size = float(np.clip(1600 / max(len(coords), 1), 6, 40))
    other = np.array([label is None for label in label_array], dtype=bool)
    for color, label in zip(PALETTE, shown, strict=False):
        mask = label_array == label
        ax.scatter(
            coords[mask, 0],
            coords[mask, 1],
            s=size * 1.3,
            color=color,
            linewidths=0.3,
            edgecolors="white",
            label=f"{_shorten(label, 46)} ({int(mask.sum())})",
            zorder=2,
        )
    if other.any():
        ax.scatter(
            coords[other, 0],
            coords[other, 1],
            s=size,
            color=OTHER_COLOR,
            linewidths=0,
            label=f"other / none ({int(other.sum())})",
            zorder=1,
        )
    ax.set_title(title)
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.legend(
        title=legend_title or None,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.11),
        ncol=2 if len(shown) > 4 else 1,
        markerscale=1.3,
        fontsize=8,
        title_fontsize=9,
    )
    fig.tight_layout()
    return fig


def plot_explained_variance(ratio: np.ndarray, n_bars: int = 50) -> Figure:
    """Variance explained per principal component (bars) and cumulatively (50/80/90% marked)."""
    apply_style()
    ratio = np.asarray(ratio, dtype=float)
    cumulative = np.cumsum(ratio)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    k = min(n_bars, len(ratio))
    left.bar(np.arange(1, k + 1), 100 * ratio[:k], color=PALETTE[0], width=0.8)
    left.set_title(f"Variance explained by each of the first {k} components")
    left.set_xlabel("principal component")
    left.set_ylabel("% of variance")
    right.plot(np.arange(1, len(ratio) + 1), 100 * cumulative, color=PALETTE[1], lw=2)
    for level, color in zip((0.5, 0.8, 0.9), PALETTE[2:5], strict=True):
        reached = np.flatnonzero(cumulative >= level - 1e-12)
        right.axhline(100 * level, color=color, lw=0.8, ls="--")
        if reached.size:
            n = int(reached[0]) + 1
            right.plot([n], [100 * cumulative[n - 1]], "o", color=color)
            right.annotate(
                f"{level:.0%}: {n} PCs",
                (n, 100 * level),
                textcoords="offset points",
                xytext=(6, -12),
                color=color,
                fontsize=9,
            )
    right.set_ylim(0, 101)
    right.set_title("Cumulative variance explained")
    right.set_xlabel("number of components")
    right.set_ylabel("% of variance")
    fig.tight_layout()
    return fig


def plot_grouped_bars(
    values: Mapping[str, Mapping[str, float]],
    title: str,
    ylabel: str,
    reference: float | None = None,
    reference_label: str = "",
) -> Figure:
    """Bars of `values[group][series]`: one cluster per group, one colour per series.

    `reference` draws a dashed horizontal line (e.g. AUROC 0.5 = chance).
    """
    apply_style()
    groups = list(values)
    series = list(dict.fromkeys(s for g in groups for s in values[g]))
    fig, ax = plt.subplots(figsize=(max(5.5, 1.2 * len(groups) * max(len(series), 1) / 2), 3.8))
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(groups))
    for i, name in enumerate(series):
        heights = [values[g].get(name, np.nan) for g in groups]
        bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, heights, width, label=name)
        ax.bar_label(bars, fmt="%.3g", fontsize=8, padding=2)
    if reference is not None:
        ax.axhline(reference, color="#868e96", lw=1, ls="--", label=reference_label or None)
    ax.set_xticks(x, [_shorten(g, 28) for g in groups])
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.margins(y=0.15)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def plot_counts(labels: Sequence[str], counts: Sequence[int], title: str, xlabel: str) -> Figure:
    """Horizontal bars of counts per label, largest on top (e.g. datasets per exclusion reason)."""
    apply_style()
    order = np.argsort(counts)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(labels) + 1.2))
    bars = ax.barh(
        [_shorten(labels[i], 50) for i in order],
        [counts[i] for i in order],
        color=[PALETTE[2] if labels[i] == "included" else PALETTE[0] for i in order],
    )
    ax.bar_label(bars, padding=3, fontsize=9)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.grid(axis="y", visible=False)
    ax.margins(x=0.12)
    fig.tight_layout()
    return fig


def _shorten(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def plot_history(history: Sequence[Mapping[str, float]], title: str = "training history") -> Figure:
    """Training and validation loss per epoch (log scale), learning rate on a second axis."""
    apply_style()
    epochs = [h["epoch"] + 1 for h in history]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(epochs, [h["loss"] for h in history], marker="o", ms=3, label="training loss")
    ax.plot(epochs, [h["val_loss"] for h in history], marker="o", ms=3, label="validation loss")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE (model units)")
    ax.set_title(title)
    rate = ax.twinx()
    rate.step(epochs, [h["learning_rate"] for h in history], where="mid", color=OTHER_COLOR)
    rate.set_yscale("log")
    rate.set_ylabel("learning rate", color="#868e96")
    rate.grid(False)
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig


def plot_search(trials: Sequence[Mapping[str, float]], by: str = "neurons") -> Figure:
    """Cross-validated loss against neurons or layers (the study's two search figures): each
    fold's held-out loss as a dot, the best trial's mean per value as a line."""
    apply_style()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    values = np.array([t[by] for t in trials], dtype=float)
    losses = np.array([t["val_loss"] for t in trials], dtype=float)
    ax.scatter(values, losses, s=14, color=PALETTE[0], alpha=0.5, label="fold")
    means: dict[tuple[float, float], list[float]] = {}
    for t in trials:
        means.setdefault((t["neurons"], t["layers"]), []).append(t["val_loss"])
    best: dict[float, float] = {}
    for (neurons, layers), fold_losses in means.items():
        key = neurons if by == "neurons" else layers
        best[key] = min(best.get(key, np.inf), float(np.nanmean(fold_losses)))
    xs = sorted(best)
    ax.plot(xs, [best[x] for x in xs], color=PALETTE[1], marker="o", label="best trial (mean)")
    if by == "neurons":
        ax.set_xscale("log")
    ax.set_xlabel(f"{by} (first hidden layer)" if by == "neurons" else "hidden layers")
    ax.set_ylabel("cross-validated MSE")
    ax.set_title(f"search: loss against {by}")
    ax.legend()
    fig.tight_layout()
    return fig
