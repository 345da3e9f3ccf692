"""What `attribute` computes: its configuration and integration rules, importable without
TensorFlow (the CLI builds its options from them)."""

from __future__ import annotations

from dataclasses import dataclass

from degae_tools.errors import ModelError

RULES = (
    "exact",
    "gauss-legendre",
    "riemann-left",
    "riemann-right",
    "riemann-middle",
    "riemann-trapezoid",
)


@dataclass(frozen=True)
class AttributeConfig:
    """How attributions are computed and what is kept of them."""

    steps: int = 50
    rule: str = "exact"
    top_k: int = 20
    batch: int = 256
    threshold: float = 0.5
    max_predicted: int = 10
    term_top: int = 200
    rank_by: str = "signed"

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ModelError(f"unknown integration rule {self.rule!r}: expected one of {RULES}")
        if self.steps < 1 or self.batch < 1 or self.top_k < 1:
            raise ModelError("steps, batch and top_k must be positive integers")
        if self.rank_by not in ("signed", "abs"):
            raise ModelError(f"rank_by must be 'signed' or 'abs', got {self.rank_by!r}")
