"""degae_tools.limma: limma's pipeline in NumPy, behaviour by behaviour."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import special

from degae_tools.errors import DesignError
from degae_tools.limma import (
    DEConfig,
    contrasts_fit,
    de_table,
    design_matrix,
    ebayes,
    limma,
    limma_batch,
    lm_fit,
    log_cpm,
    lowess,
    p_adjust_bh,
    squeeze_var,
    t_test_p,
    trigamma_inverse,
)

GROUPS = ["ctrl", "ctrl", "ctrl", "ko", "ko", "ko"]


@pytest.fixture
def log_expr() -> np.ndarray:
    """200 genes x 6 samples, gene variances from a scaled inverse chi-square (limma's prior)."""
    rng = np.random.default_rng(1)
    sd = np.sqrt(10 * 0.09 / rng.chisquare(10, (200, 1)))
    expr = rng.normal(6.0, 1.0, (200, 6)) * sd
    expr[0, 3:] += 2.0
    return expr


@pytest.fixture
def counts() -> np.ndarray:
    rng = np.random.default_rng(2)
    return rng.poisson(rng.gamma(0.5, 200, (300, 1)), (300, 6)).astype(float)


def test_log_cpm_is_voom_log2_counts_per_million() -> None:
    counts = np.array([[0.0, 10.0], [5.0, 0.0], [995.0, 90.0]])
    expected = np.log2((counts + 0.5) / (np.array([1000.0, 100.0]) + 1) * 1e6)
    np.testing.assert_allclose(log_cpm(counts), expected, rtol=1e-14)


def test_log_cpm_takes_given_library_sizes() -> None:
    value = log_cpm(np.array([[1.5]]), lib_size=np.array([1e6 - 1]))
    np.testing.assert_allclose(value, [[1.0]], rtol=1e-14)


def test_design_matrix_is_cell_means_with_sorted_levels() -> None:
    X, levels = design_matrix(["b", "a", "b", "c"])
    assert levels == ["a", "b", "c"]
    np.testing.assert_array_equal(X, [[0, 1, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])


def test_lm_fit_gives_group_means_and_pooled_sd() -> None:
    X, _ = design_matrix(["a", "a", "b", "b", "b"])
    fit = lm_fit(np.array([[1.0, 3.0, 10.0, 11.0, 12.0]]), X)
    np.testing.assert_allclose(fit.coefficients, [[2.0, 11.0]])
    np.testing.assert_allclose(fit.sigma, [np.sqrt((2 + 2) / 3)])
    np.testing.assert_allclose(fit.stdev_unscaled, [[1 / np.sqrt(2), 1 / np.sqrt(3)]])
    np.testing.assert_array_equal(fit.df_residual, [3.0])


def test_lm_fit_uses_only_observed_samples_of_a_gene() -> None:
    X, _ = design_matrix(["a", "a", "a", "b", "b"])
    fit = lm_fit(np.array([[1.0, np.nan, 3.0, 10.0, 12.0], [np.nan] * 5]), X)
    np.testing.assert_allclose(fit.coefficients[0], [2.0, 11.0])
    np.testing.assert_array_equal(fit.df_residual, [2.0, 0.0])
    assert np.isnan(fit.coefficients[1]).all()


def test_lm_fit_rejects_a_rank_deficient_design() -> None:
    X = np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    with pytest.raises(DesignError, match="full column rank"):
        lm_fit(np.ones((2, 3)), X)


def test_log_fc_is_mean_of_b_minus_mean_of_a(log_expr: np.ndarray) -> None:
    table = limma(log_expr, GROUPS, ("ko", "ctrl"), DEConfig(input="log"))
    expected = log_expr[:, 3:].mean(axis=1) - log_expr[:, :3].mean(axis=1)
    np.testing.assert_allclose(table["logFC"].to_numpy(), expected, rtol=1e-12, atol=1e-12)
    assert table.columns == ["gene", "logFC", "AveExpr", "t", "P.Value", "adj.P.Val", "B"]


def test_swapping_the_contrast_flips_log_fc_and_t(log_expr: np.ndarray) -> None:
    forward = limma(log_expr, GROUPS, ("ko", "ctrl"), DEConfig(input="log"))
    backward = limma(log_expr, GROUPS, ("ctrl", "ko"), DEConfig(input="log"))
    np.testing.assert_allclose(backward["t"].to_numpy(), -forward["t"].to_numpy())
    np.testing.assert_allclose(backward["P.Value"].to_numpy(), forward["P.Value"].to_numpy())


def test_the_changed_gene_is_the_most_significant(log_expr: np.ndarray) -> None:
    table = limma(log_expr, GROUPS, ("ko", "ctrl"), DEConfig(input="log"))
    assert table["adj.P.Val"].arg_min() == 0
    assert table["adj.P.Val"][0] < 1e-3
    assert table["B"].arg_max() == 0


def test_gene_ids_name_the_rows(log_expr: np.ndarray) -> None:
    ids = [f"ENSMUSG{i:011d}" for i in range(200)]
    table = limma(log_expr, GROUPS, ("ko", "ctrl"), DEConfig(input="log"), gene_ids=ids)
    assert table["gene"].to_list() == ids


def test_zero_variance_gene_gets_a_finite_moderated_t(log_expr: np.ndarray) -> None:
    log_expr[5] = [4.0, 4.0, 4.0, 5.0, 5.0, 5.0]
    table = limma(log_expr, GROUPS, ("ko", "ctrl"), DEConfig(input="log"))
    assert np.isfinite(table["t"][5]) and table["t"][5] > 0


def test_an_all_missing_gene_gives_a_missing_row(log_expr: np.ndarray) -> None:
    log_expr[7] = np.nan
    table = limma(log_expr, GROUPS, ("ko", "ctrl"), DEConfig(input="log"))
    assert np.isnan(table.row(7)[1:]).all()
    assert table["adj.P.Val"].drop_nans().len() == 199


def test_equal_variances_give_an_infinite_prior_df() -> None:
    var_post, var_prior, df_prior = squeeze_var(np.full(50, 0.3), np.full(50, 4.0))
    assert np.isinf(df_prior)
    np.testing.assert_allclose(var_prior, 0.3)
    np.testing.assert_allclose(var_post, 0.3)


def test_squeeze_var_shrinks_toward_the_prior() -> None:
    rng = np.random.default_rng(3)
    var = 10 * 0.2 / rng.chisquare(10, 500) * rng.chisquare(4, 500) / 4
    var_post, var_prior, df_prior = squeeze_var(var, np.full(500, 4.0))
    assert 0 < df_prior < np.inf
    assert np.all(np.abs(var_post - var_prior) <= np.abs(var - var_prior))


def test_trigamma_inverse_inverts_trigamma() -> None:
    y = np.array([1e-3, 0.3, 2.0, 50.0, 1e4])
    np.testing.assert_allclose(trigamma_inverse(special.polygamma(1, y)), y, rtol=1e-8)


def test_p_adjust_bh_matches_r_and_keeps_missing_values() -> None:
    adjusted = p_adjust_bh(np.array([0.01, 0.5, np.nan, 0.001, 0.02]))
    # R: p.adjust(c(0.01, 0.5, NA, 0.001, 0.02), "BH")
    np.testing.assert_allclose(adjusted, [0.02, 0.5, np.nan, 0.004, 0.02666667], rtol=1e-6)


@pytest.mark.parametrize("df", [1.5, 4.0, 7.3, 60.0, 1e5])
def test_t_test_p_matches_the_incomplete_beta(df: float) -> None:
    t = np.concatenate([np.linspace(-40, 40, 2001), [0.0, 1e-12, np.inf, np.nan]])
    exact = 2 * special.stdtr(df, -np.abs(t))
    ours = t_test_p(t, df)
    np.testing.assert_allclose(ours, exact, rtol=1e-11, atol=1e-300)


def test_ebayes_moderates_toward_the_prior(log_expr: np.ndarray) -> None:
    X, _ = design_matrix(GROUPS)
    fit = contrasts_fit(lm_fit(log_expr, X), np.array([-1.0, 1.0]))
    eb = ebayes(fit)
    assert 0 < eb.df_prior < np.inf
    np.testing.assert_array_equal(eb.df_total, 4 + eb.df_prior)
    assert np.all(np.abs(eb.s2_post - eb.s2_prior) <= np.abs(fit.sigma**2 - eb.s2_prior))


def test_batch_equals_one_dataset_at_a_time(counts: np.ndarray) -> None:
    batch = np.stack([counts, counts[::-1], counts * 2 + 1])
    result = limma_batch(batch, GROUPS, ("ko", "ctrl"))
    for i, dataset in enumerate(batch):
        alone = limma(dataset, GROUPS, ("ko", "ctrl"))
        np.testing.assert_allclose(result.t[i], alone["t"].to_numpy(), rtol=1e-12)
        np.testing.assert_allclose(result.adj_p_value[i], alone["adj.P.Val"].to_numpy())


def test_voom_weights_change_the_result(counts: np.ndarray) -> None:
    plain = limma(counts, GROUPS, ("ko", "ctrl"))
    weighted = limma(counts, GROUPS, ("ko", "ctrl"), DEConfig(voom=True))
    np.testing.assert_allclose(weighted["AveExpr"].to_numpy(), plain["AveExpr"].to_numpy())
    assert not np.allclose(weighted["t"].to_numpy(), plain["t"].to_numpy())


def test_raw_mode_fits_the_counts_themselves(counts: np.ndarray) -> None:
    table = limma(counts, GROUPS, ("ko", "ctrl"), DEConfig(input="raw"))
    expected = counts[:, 3:].mean(axis=1) - counts[:, :3].mean(axis=1)
    np.testing.assert_allclose(table["logFC"].to_numpy(), expected, rtol=1e-10, atol=1e-9)


def test_de_table_has_the_warehouse_columns(counts: np.ndarray) -> None:
    table = de_table(counts, GROUPS, ("ko", "ctrl"), gene_index=np.arange(300) + 10)
    assert table.columns == [
        "gene_index",
        "log_fc",
        "ave_expr",
        "t",
        "p_value",
        "adj_p_value",
        "b",
    ]
    assert table["gene_index"].dtype == pl.Int32
    assert table["gene_index"][0] == 10


def test_lowess_reproduces_a_straight_line() -> None:
    x = np.linspace(0, 10, 200)
    _, fitted = lowess(x, 3 * x + 1, f=0.5)
    np.testing.assert_allclose(fitted, 3 * x + 1, rtol=1e-10)


def test_a_group_with_one_sample_is_rejected(counts: np.ndarray) -> None:
    with pytest.raises(DesignError, match="group 'ko' has 1 sample"):
        limma(counts[:, :4], GROUPS[:4], ("ko", "ctrl"))


def test_all_zero_counts_are_rejected() -> None:
    with pytest.raises(DesignError, match="all counts are zero"):
        limma(np.zeros((10, 6)), GROUPS, ("ko", "ctrl"))


def test_a_sample_without_reads_is_rejected(counts: np.ndarray) -> None:
    counts[:, 4] = 0
    with pytest.raises(DesignError, match="sample 4 has no counts"):
        limma(counts, GROUPS, ("ko", "ctrl"))


def test_negative_counts_are_rejected(counts: np.ndarray) -> None:
    counts[3, 1] = -1
    with pytest.raises(DesignError, match="non-negative"):
        limma(counts, GROUPS, ("ko", "ctrl"))


def test_no_residual_degrees_of_freedom_is_rejected(counts: np.ndarray) -> None:
    with pytest.raises(DesignError, match="no residual degrees of freedom"):
        limma(counts[:, 2:4], ["ctrl", "ko"], ("ko", "ctrl"), DEConfig(min_replicates=1))


def test_a_contrast_group_missing_from_the_design_is_rejected(counts: np.ndarray) -> None:
    with pytest.raises(DesignError, match="'wt' is not among the groups"):
        limma(counts, GROUPS, ("wt", "ctrl"))


def test_several_contrasts_at_once_equal_each_alone(log_expr: np.ndarray) -> None:
    X, _ = design_matrix(["a", "a", "b", "b", "c", "c"])
    fit = lm_fit(log_expr, X)
    both = ebayes(contrasts_fit(fit, np.array([[-1.0, 0.0], [1.0, -1.0], [0.0, 1.0]])))
    for j, contrast in enumerate([[-1.0, 1.0, 0.0], [0.0, -1.0, 1.0]]):
        alone = ebayes(contrasts_fit(fit, np.array(contrast)))
        np.testing.assert_allclose(both.t[:, j], alone.t[:, 0])
        np.testing.assert_allclose(both.p_value[:, j], alone.p_value[:, 0])
        np.testing.assert_allclose(both.lods[:, j], alone.lods[:, 0])
