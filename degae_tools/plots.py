"""Figures: functions that take data and return a matplotlib Figure (the caller saves it)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

OTHER_COLOR = "#bbbbbb"
# Okabe & Ito's colour-blind-safe palette (https://jfly.uni-koeln.de/color/), most distinct first,
# and one marker per colour so that a legend entry never depends on colour alone.
PALETTE = (
    "#0072b2",
    "#d55e00",
    "#009e73",
    "#cc79a7",
    "#e69f00",
    "#56b4e9",
    "#000000",
    "#f0e442",
)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
# Marker areas that look alike: a star or a cross of the same area as a dot looks smaller.
MARKER_SCALE = {"o": 1.0, "s": 0.9, "^": 1.15, "D": 0.8, "v": 1.15, "P": 1.3, "X": 1.3, "*": 2.0}
CHANCE_COLOR = "#495057"


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
    """Scatter of 2-D coordinates: the `max_labels` most frequent labels (at most one per palette
    colour) each in its own colour and marker, the rest small and grey as "other / none".

    A label of None (no enriched term, no value) counts as "other / none".
    """
    apply_style()
    coords = np.asarray(coords, dtype=float).reshape(-1, 2)
    counts = Counter(label for label in labels if label is not None)
    shown = [label for label, _ in counts.most_common(min(max_labels, len(PALETTE)))]
    groups = np.array([label if label in shown else None for label in labels], dtype=object)
    fig, ax = plt.subplots(figsize=(6.4, 6.8))
    # Marker area in points²: large for a few hundred contrasts, never below a visible dot.
    size = float(np.clip(12_000 / max(len(coords), 1), 18, 70))
    for color, marker, label in zip(PALETTE, MARKERS, shown, strict=False):
        mask = groups == label
        ax.scatter(
            coords[mask, 0],
            coords[mask, 1],
            s=size * MARKER_SCALE[marker],
            color=color,
            marker=marker,
            linewidths=0.35,
            edgecolors=(0.0, 0.0, 0.0, 0.45),
            alpha=0.9,
            label=f"{_shorten(label, 46)} ({int(mask.sum())})",
            zorder=2,
        )
    other = np.array([label is None for label in groups], dtype=bool)
    if other.any():  # underneath the labelled points, last in the legend
        ax.scatter(
            coords[other, 0],
            coords[other, 1],
            s=size * 0.5,
            color=OTHER_COLOR,
            linewidths=0,
            alpha=0.8,
            label=f"other / none ({int(other.sum())})",
            zorder=1,
        )
    ax.set_title(title)
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    _legend_below(ax, legend_title, ncol=2 if len(shown) > 4 else 1)
    fig.tight_layout()
    return fig


def _legend_below(ax, title: str, ncol: int) -> None:
    """A small legend under the axes (a scatter's many labels never cover its points)."""
    ax.legend(
        title=title or None,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.11),
        ncol=ncol,
        markerscale=1.2,
        fontsize=8,
        title_fontsize=9,
    )


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


def plot_grouped_bars(values: Mapping[str, Mapping[str, float]], title: str, xlabel: str) -> Figure:
    """Horizontal bars of `values[group][series]`: one cluster per group (labelled on the left,
    so long labels never overlap), one colour per series, each bar labelled with its value."""
    apply_style()
    groups = list(values)
    series = list(dict.fromkeys(s for g in groups for s in values[g]))
    n = max(len(series), 1)
    fig, ax = plt.subplots(figsize=(7.5, 1.0 + 0.3 * len(groups) * n + 0.25 * len(groups)))
    height = 0.8 / n
    y = np.arange(len(groups))
    for i, name in enumerate(series):
        widths = [values[g].get(name, np.nan) for g in groups]
        bars = ax.barh(y + (i - (n - 1) / 2) * height, widths, height, label=name)
        ax.bar_label(bars, fmt="%.3g", fontsize=8, padding=2)
    ax.set_yticks(y, [_shorten(g, 40) for g in groups])
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    ax.axvline(0, color="#868e96", lw=0.8)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.margins(x=0.15)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def plot_score_panels(
    scores: Mapping[str, Mapping[str, float | None]],
    title: str,
    chance: Mapping[str, tuple[float, str]] | None = None,
) -> Figure:
    """One panel per score (`scores[score][predictor]`), a horizontal bar per predictor.

    A panel gets a dashed chance line only when `chance` names its level and label (AUROC: 0.5;
    AUPRC: the mean prevalence, which depends on the data), so no line claims a chance level
    that does not hold for its score."""
    apply_style()
    chance = chance or {}
    names = list(scores)
    predictors = list(dict.fromkeys(p for s in names for p in scores[s]))
    fig, axes = plt.subplots(
        1, len(names), figsize=(4.2 * len(names) + 1.2, 0.9 + 0.42 * len(predictors)), squeeze=False
    )
    y = np.arange(len(predictors))
    for k, (ax, name) in enumerate(zip(axes[0], names, strict=True)):
        widths = [np.nan if v is None else v for v in (scores[name].get(p) for p in predictors)]
        bars = ax.barh(y, widths, 0.7, color=[PALETTE[i % len(PALETTE)] for i in range(len(y))])
        ax.bar_label(bars, fmt="%.3g", fontsize=8, padding=2)
        if name in chance:
            level, label = chance[name]
            ax.axvline(level, color=CHANCE_COLOR, lw=1.2, ls="--", label=label)
            ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=8)
        ax.set_yticks(y, predictors if k == 0 else [""] * len(predictors))
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        ax.set_xlim(0, 1.12)
        ax.set_xlabel(f"macro {name}")
    fig.suptitle(title, fontsize=11, fontweight="bold")
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
    """Training and validation loss per epoch (log scale), the learning rate on a labelled
    right-hand axis; one legend names all three lines."""
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
    rate.step(
        epochs,
        [h["learning_rate"] for h in history],
        where="mid",
        color=CHANCE_COLOR,
        ls="--",
        lw=1.2,
        label="learning rate (right axis)",
    )
    rate.set_yscale("log")
    rate.set_ylabel("learning rate", color=CHANCE_COLOR)
    rate.tick_params(axis="y", colors=CHANCE_COLOR)
    rate.grid(False)
    rate.spines["right"].set_visible(True)
    lines = ax.get_lines() + rate.get_lines()
    labels = [line.get_label() for line in lines]
    ax.legend(lines, labels, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3)
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
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(xs, [f"{x:,.0f}" for x in xs])  # the values tried, as plain numbers
    ax.set_xlabel(f"{by} (first hidden layer)" if by == "neurons" else "hidden layers")
    ax.set_ylabel("cross-validated MSE")
    ax.set_title(f"search: loss against {by}")
    ax.legend()
    fig.tight_layout()
    return fig
