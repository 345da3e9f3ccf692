"""degae_tools.limma against R limma itself (lmFit → contrasts.fit → eBayes → topTable)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from degae_tools.limma import DEConfig, limma, lowess

SCRIPT = Path(__file__).parent / "r" / "limma_reference.R"
COLUMNS = ["logFC", "AveExpr", "t", "P.Value", "adj.P.Val", "B"]


def _has_limma() -> bool:
    if shutil.which("Rscript") is None:
        return False
    probe = subprocess.run(
        ["Rscript", "-e", "suppressPackageStartupMessages(library(limma))"],
        capture_output=True,
    )
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(not _has_limma(), reason="Rscript with limma is not installed")


def run_r(
    tmp_path: Path, expr: np.ndarray, groups: list[str], contrast: str, mode: str = "log"
) -> pl.DataFrame:
    """Run tests/r/limma_reference.R on a genes x samples matrix and read its topTable."""
    samples = [f"s{j}" for j in range(expr.shape[1])]
    table = pl.DataFrame({"gene": [f"g{i}" for i in range(expr.shape[0])]}).with_columns(
        [pl.Series(s, expr[:, j]).fill_nan(None) for j, s in enumerate(samples)]
    )
    table.write_csv(tmp_path / "in.tsv", separator="\t", null_value="NA", float_precision=17)
    pl.DataFrame({"group": groups}).write_csv(tmp_path / "groups.tsv", separator="\t")
    args = ["in.tsv", "groups.tsv", contrast, "out.tsv", mode]
    subprocess.run(["Rscript", str(SCRIPT), *args], cwd=tmp_path, check=True)
    return pl.read_csv(
        tmp_path / "out.tsv", separator="\t", null_values="NA", infer_schema_length=None
    ).with_columns([pl.col(c).cast(pl.Float64).fill_null(np.nan) for c in COLUMNS])


def assert_matches_r(ours: pl.DataFrame, ref: pl.DataFrame, rtol: float = 1e-6) -> None:
    """logFC, AveExpr, t, B within rtol; P and adj.P within 1e-8; same adj.P.Val order."""
    for col in ["logFC", "AveExpr", "t", "B"]:
        np.testing.assert_allclose(
            ours[col].to_numpy(), ref[col].to_numpy(), rtol=rtol, atol=1e-9, err_msg=col
        )
    for col in ["P.Value", "adj.P.Val"]:
        np.testing.assert_allclose(
            ours[col].to_numpy(), ref[col].to_numpy(), rtol=0, atol=1e-8, err_msg=col
        )
    ours_rank = ours["adj.P.Val"].rank("min").to_numpy()
    ref_rank = ref["adj.P.Val"].rank("min").to_numpy()
    np.testing.assert_array_equal(ours_rank, ref_rank)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def log_expression(rng: np.random.Generator, n_genes: int, groups: list[str]) -> np.ndarray:
    """Log-scale expression with gene-specific variances and a few true effects."""
    sd = np.sqrt(rng.gamma(4.0, 0.05, n_genes))[:, None]
    expr = rng.normal(8.0, 2.0, (n_genes, 1)) + rng.normal(0.0, 1.0, (n_genes, len(groups))) * sd
    effect = np.where(rng.random(n_genes) < 0.1, rng.normal(0, 2, n_genes), 0.0)
    return expr + effect[:, None] * (np.asarray(groups) == groups[-1])


def test_two_groups_equal_replicates(tmp_path: Path, rng: np.random.Generator) -> None:
    groups = ["A"] * 3 + ["B"] * 3
    expr = log_expression(rng, 2000, groups)
    ours = limma(expr, groups, ("B", "A"), DEConfig(input="log"))
    assert_matches_r(ours, run_r(tmp_path, expr, groups, "B-A"))


def test_unequal_replicates(tmp_path: Path, rng: np.random.Generator) -> None:
    groups = ["ctrl"] * 3 + ["treated"] * 5
    expr = log_expression(rng, 2000, groups)
    ours = limma(expr, groups, ("treated", "ctrl"), DEConfig(input="log"))
    assert_matches_r(ours, run_r(tmp_path, expr, groups, "treated-ctrl"))


def test_three_groups_with_a_chosen_contrast(tmp_path: Path, rng: np.random.Generator) -> None:
    groups = ["a", "b", "c", "a", "b", "c", "a", "b", "c", "c"]
    expr = log_expression(rng, 2000, groups)
    ours = limma(expr, groups, ("a", "c"), DEConfig(input="log"))
    assert_matches_r(ours, run_r(tmp_path, expr, groups, "a-c"))


def test_zero_variance_genes(tmp_path: Path, rng: np.random.Generator) -> None:
    groups = ["A"] * 3 + ["B"] * 4
    expr = log_expression(rng, 1000, groups)
    expr[:20] = 5.0
    expr[20:30] = np.where(np.asarray(groups) == "B", 7.0, 3.0)
    ours = limma(expr, groups, ("B", "A"), DEConfig(input="log"))
    assert np.isfinite(ours["t"][20:30].to_numpy()).all()
    assert_matches_r(ours, run_r(tmp_path, expr, groups, "B-A"))


def test_missing_values(tmp_path: Path, rng: np.random.Generator) -> None:
    groups = ["A"] * 4 + ["B"] * 4
    expr = log_expression(rng, 1500, groups)
    expr[0] = np.nan
    expr[rng.random(expr.shape) < 0.03] = np.nan
    expr[5, :4] = np.nan
    expr[6, [0, 1, 2, 4, 5, 6]] = np.nan
    ours = limma(expr, groups, ("B", "A"), DEConfig(input="log"))
    ref = run_r(tmp_path, expr, groups, "B-A")
    assert ours["t"].is_nan().sum() == ref["t"].is_nan().sum() == 2
    assert_matches_r(ours, ref)


def test_a_group_missing_for_some_genes(tmp_path: Path, rng: np.random.Generator) -> None:
    groups = ["a", "a", "a", "b", "b", "b", "c", "c", "c"]
    expr = log_expression(rng, 800, groups)
    expr[:10, 6:] = np.nan
    expr[10:20, :3] = np.nan
    expr[20, [0, 3, 6]] = np.inf
    ours = limma(expr, groups, ("b", "a"), DEConfig(input="log"))
    ref = run_r(tmp_path, expr, groups, "b-a")
    assert ours["t"][10:20].is_nan().all()
    assert_matches_r(ours, ref)


def test_equal_variances_give_an_infinite_prior_df(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    groups = ["A"] * 3 + ["B"] * 3
    noise = rng.normal(0, 0.4, 6)
    effect = np.where(rng.random(500) < 0.1, rng.normal(0, 2, 500), 0.0)
    expr = rng.normal(7, 2, (500, 1)) + noise + effect[:, None] * (np.arange(6) >= 3)
    ours = limma(expr, groups, ("B", "A"), DEConfig(input="log"))
    assert_matches_r(ours, run_r(tmp_path, expr, groups, "B-A"))


def test_raw_count_mode(tmp_path: Path, rng: np.random.Generator) -> None:
    groups = ["A"] * 3 + ["B"] * 3
    counts = rng.negative_binomial(2, 0.01, (2000, 6)).astype(float)
    counts[:50] = 0
    ours = limma(counts, groups, ("B", "A"), DEConfig(input="raw"))
    assert_matches_r(ours, run_r(tmp_path, counts, groups, "B-A"))


def test_log_cpm_from_counts(tmp_path: Path, rng: np.random.Generator) -> None:
    groups = ["A"] * 4 + ["B"] * 3
    mu = rng.gamma(0.5, 200, (3000, 1)) * rng.uniform(0.5, 2.0, (1, 7))
    counts = rng.negative_binomial(5, 5 / (5 + mu)).astype(float)
    ours = limma(counts, groups, ("B", "A"), DEConfig(input="counts"))
    assert_matches_r(ours, run_r(tmp_path, counts, groups, "B-A", mode="counts"))


def test_voom(tmp_path: Path, rng: np.random.Generator) -> None:
    groups = ["A"] * 3 + ["B"] * 3
    mu = rng.gamma(0.5, 200, (3000, 1)) * rng.uniform(0.5, 2.0, (1, 6))
    counts = rng.negative_binomial(5, 5 / (5 + mu)).astype(float)
    counts[:30] = 0
    ours = limma(counts, groups, ("B", "A"), DEConfig(input="counts", voom=True))
    assert_matches_r(ours, run_r(tmp_path, counts, groups, "B-A", mode="voom"))


def test_lowess_matches_r(tmp_path: Path, rng: np.random.Generator) -> None:
    x = np.round(rng.normal(0, 3, 4000), 2)
    y = np.sin(x) + rng.standard_t(2, 4000) * 0.3
    np.savetxt(tmp_path / "xy.tsv", np.column_stack([x, y]), delimiter="\t", fmt="%.17g")
    code = (
        "xy <- as.matrix(read.table('xy.tsv')); l <- lowess(xy[,1], xy[,2], f = 0.5);"
        "write.table(sprintf('%.17g', l$y), 'ly.tsv', quote = FALSE, row.names = FALSE,"
        " col.names = FALSE)"
    )
    subprocess.run(["Rscript", "-e", code], cwd=tmp_path, check=True)
    _, ours = lowess(x, y, f=0.5)
    np.testing.assert_allclose(ours, np.loadtxt(tmp_path / "ly.tsv"), rtol=1e-10, atol=1e-12)
