"""Which genes an imported signature's GO labels are computed from: its strongest genes up and
its strongest genes down, as two candidate sets, against the genes it measured as universe.

A signature has a score per gene (an L1000 moderated z, a DESeq2 Wald statistic), seldom a
p-value, so the compendium's rule (adj.P.Val < 0.05) does not apply. The default rule, the one
CMap-style studies use: a gene counts up when its score is at least 2 (down: at most -2), and
only the 50 strongest each way are kept, so a signature with thousands of changed genes does not
flood its labels with the largest terms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl


@dataclass(frozen=True)
class StrongestGenes:
    """The candidate-gene rule of imported signatures (the compendium keeps adj.P.Val)."""

    signature_min_score: float = field(
        default=2.0,
        metadata={"help": "Signatures: a gene is up (down) at a score >= this (<= minus this)."},
    )
    signature_max_genes: int = field(
        default=50, metadata={"help": "Signatures: at most this many strongest genes each way."}
    )

    def __post_init__(self) -> None:
        if self.signature_min_score < 0 or self.signature_max_genes < 1:
            raise ValueError(
                f"signature_min_score={self.signature_min_score}, signature_max_genes="
                f"{self.signature_max_genes}: need a score >= 0 and at least one gene"
            )


def strongest_gene_sets(
    scores: pl.DataFrame, n_genes: int, rule: StrongestGenes = StrongestGenes()
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """`{"up": mask, "down": mask}` (a direction without genes is left out) and the tested mask,
    from one signature's `gene_index, score` rows (genes without a finite score are untested).
    Ties at the cut keep the lower gene_index, so the sets do not depend on row order."""
    rows = scores.filter(pl.col("score").is_not_null() & pl.col("score").is_finite())
    index = rows["gene_index"].to_numpy()
    score = rows["score"].to_numpy().astype(np.float64)
    tested = np.zeros(n_genes, dtype=bool)
    tested[index] = True
    sets = {}
    for direction, signed in (("up", score), ("down", -score)):
        strong = np.flatnonzero(signed >= rule.signature_min_score)
        order = np.lexsort((index[strong], -signed[strong]))[: rule.signature_max_genes]
        if len(order):
            mask = np.zeros(n_genes, dtype=bool)
            mask[index[strong[order]]] = True
            sets[direction] = mask
    return sets, tested
