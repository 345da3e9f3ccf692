"""What predict, attribute and validate compute: their settings, each written once here and
importable without TensorFlow (the CLI builds its options from these fields)."""

from __future__ import annotations

from dataclasses import dataclass, field

from degae_tools.errors import ModelError
from degae_tools.thresholds import GO_FWER

# The columns of core.go_enrichment that can label a term (warehouse.export.LABEL_COLUMNS, which
# builds the SQL, checks the same list; models/ may not import the warehouse, a test compares them).
LABEL_COLUMNS = ("fwer_over", "fdr_over", "p_over", "fwer_under", "p_under")
RULES = (
    "exact",
    "gauss-legendre",
    "riemann-left",
    "riemann-right",
    "riemann-middle",
    "riemann-trapezoid",
)
RANK_BY = ("signed", "abs")


def _help(text: str, **more) -> dict:
    return {"help": text, **more}


@dataclass(frozen=True)
class PredictConfig:
    """How the GO-term head is fitted; `split_name` None uses the model's own split."""

    split_name: str | None = field(
        default=None,
        metadata=_help("Split in ml.splits (default: the model's, else the only one)."),
    )
    label_column: str = field(
        default="fwer_over",
        metadata=_help("core.go_enrichment column that labels a term.", choices=LABEL_COLUMNS),
    )
    threshold: float = field(default=GO_FWER, metadata=_help("Label: column < threshold."))
    min_positives: int = field(
        default=10, metadata=_help("Terms need this many positive training contrasts.")
    )
    hidden: int = field(default=0, metadata=_help("Hidden ReLU units (0: linear)."))
    epochs: int = field(default=300, metadata=_help("Most epochs of the head."))
    batch_size: int = 64
    learning_rate: float = 1e-2
    l2: float = field(default=1e-4, metadata=_help("L2 penalty on the head's weights."))
    max_pos_weight: float = field(
        default=50.0, metadata=_help("Cap on a rare term's positive weight (n_neg / n_pos).")
    )
    fine_tune: bool = field(
        default=False, metadata=_help("Tune the encoder too.", flag="--fine-tune/--frozen")
    )
    fine_tune_learning_rate: float = 1e-3
    patience: int = field(
        default=30, metadata=_help("Epochs without a better validation loss before stopping.")
    )
    seed: int = 69

    def __post_init__(self) -> None:
        if self.label_column not in LABEL_COLUMNS:
            raise ModelError(
                f"unknown label column {self.label_column!r}: expected one of {LABEL_COLUMNS}"
            )


@dataclass(frozen=True)
class AttributeConfig:
    """How attributions are computed and what is kept of them."""

    steps: int = field(default=50, metadata=_help("Points on the path (quadrature rules)."))
    rule: str = field(
        default="exact",
        metadata=_help(
            "exact: walk the ReLU segments of the path (no steps, complete to round-off); "
            "the others are quadrature rules over --steps points.",
            choices=RULES,
        ),
    )
    top_k: int = field(default=20, metadata=_help("Genes kept per pair."))
    batch: int = field(default=256, metadata=_help("Path points (exact: pairs) per forward pass."))
    threshold: float = field(default=0.5, metadata=_help("Score that counts as predicted."))
    max_predicted: int = field(default=10, metadata=_help("Predicted terms kept per contrast."))
    term_top: int = field(default=200, metadata=_help("Genes kept per term."))
    rank_by: str = field(
        default="signed",
        metadata=_help("Rank genes by attribution or |attribution|.", choices=RANK_BY),
    )

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ModelError(f"unknown integration rule {self.rule!r}: expected one of {RULES}")
        if self.steps < 1 or self.batch < 1 or self.top_k < 1:
            raise ModelError("steps, batch and top_k must be positive integers")
        if self.rank_by not in RANK_BY:
            raise ModelError(f"rank_by must be 'signed' or 'abs', got {self.rank_by!r}")


@dataclass(frozen=True)
class ValidateConfig:
    """How many genes count as the top, how many pairs the recomputing checks use, and seeds."""

    k: int = 20
    max_pairs: int = field(default=200, metadata=_help("Pairs the checks recompute."))
    n_seeds: int = field(default=3, metadata=_help("Heads refitted for the stability check."))
    seed: int = 0
