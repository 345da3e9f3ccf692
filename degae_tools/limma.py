"""limma's moderated t-test (lmFit → contrasts.fit → eBayes → topTable) in NumPy.

A port of limma 3.54's R code, vectorised over genes and batched over datasets that share a
design, so that thousands of contrasts run in seconds. Every function takes genes on the
second-to-last (matrices) or last (vectors) axis; leading axes are datasets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from functools import cache, lru_cache
from typing import Literal

import numpy as np
import polars as pl
from numpy.polynomial import chebyshev
from scipy import special, stats
from threadpoolctl import ThreadpoolController

from degae_tools.errors import DesignError

InputKind = Literal["counts", "log", "raw"]

# limma's lm.series drops design columns whose residual norm falls below this (LINPACK dqrdc2).
_QR_TOL = 1e-7
# Genes per block in lm_fit's products: a block of expression stays in the CPU cache.
_BLOCK = 4096
# Integer counts below this are log-transformed by table lookup: one gather, not a logarithm.
_LOG_TABLE_SIZE = 1 << 16


@dataclass(frozen=True)
class DEConfig:
    """How expression is prepared and tested; defaults reproduce limma with voom's log-CPM."""

    prior_count: float = field(default=0.5, metadata={"help": "log2-CPM prior count."})
    input: InputKind = field(
        default="counts",
        metadata={
            "choices": ("counts", "raw"),
            "help": "counts: limma on log2-CPM; raw: on raw counts, as the reference study did.",
        },
    )
    voom: bool = field(default=False, metadata={"help": "voom precision weights."})
    adjust: Literal["BH"] = "BH"
    min_replicates: int = 2
    proportion: float = 0.01


@dataclass(frozen=True)
class LinearFit:
    """lmFit's result: per-gene coefficients, unscaled standard errors, sigma and residual df."""

    coefficients: np.ndarray
    stdev_unscaled: np.ndarray
    sigma: np.ndarray
    df_residual: np.ndarray
    cov_coefficients: np.ndarray
    amean: np.ndarray


@dataclass(frozen=True)
class EBayesFit:
    """eBayes's result for a fit with one or more contrasts."""

    t: np.ndarray
    p_value: np.ndarray
    lods: np.ndarray
    df_total: np.ndarray
    s2_post: np.ndarray
    s2_prior: np.ndarray
    df_prior: np.ndarray


@dataclass(frozen=True)
class DEBatch:
    """topTable columns for a batch of datasets, each of shape (datasets, genes)."""

    log_fc: np.ndarray
    ave_expr: np.ndarray
    t: np.ndarray
    p_value: np.ndarray
    adj_p_value: np.ndarray
    b: np.ndarray
    order: np.ndarray  # per dataset, the genes sorted by p-value (NaN last), as BH sorts them


def log_cpm(
    counts: np.ndarray,
    lib_size: np.ndarray | None = None,
    prior_count: float = 0.5,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """log2 counts per million as voom: log2((count + prior) / (lib_size + 2 prior) * 1e6).

    With the default prior of 0.5 this is voom's log2((count + 0.5) / (lib_size + 1) * 1e6);
    library sizes default to the column sums (genes on the second-to-last axis). ``out`` may
    be a reused buffer of the result's shape. Integer counts are looked up in a table of
    logarithms (the same values, without computing a logarithm per count).
    """
    counts = np.asarray(counts)
    if counts.dtype.kind not in "iu":
        counts = counts.astype(np.float64, copy=False)
    if lib_size is None:
        lib_size = counts.sum(axis=-2) if counts.dtype.kind in "iu" else np.nansum(counts, -2)
    if counts.dtype.kind in "iu":
        by_sample = _log_cpm_by_sample(np.swapaxes(counts, -1, -2), lib_size, prior_count)
        if out is None:
            return np.swapaxes(by_sample, -1, -2)
        np.copyto(out, np.swapaxes(by_sample, -1, -2))
        return out
    log_scale = np.log2((np.asarray(lib_size, dtype=np.float64) + 2.0 * prior_count) / 1e6)
    log_scale = log_scale[..., None, :]
    if out is None:
        out = np.empty(np.broadcast_shapes(counts.shape, log_scale.shape))
    # Gene blocks, so that the three passes over each block stay in the CPU cache.
    for start in range(0, out.shape[-2], _BLOCK):
        block = out[..., start : start + _BLOCK, :]
        np.add(counts[..., start : start + _BLOCK, :], prior_count, out=block)
        np.log2(block, out=block)
        block -= log_scale
    return out


def _log_cpm_by_sample(counts: np.ndarray, lib_size: np.ndarray, prior_count: float) -> np.ndarray:
    """log_cpm in sample-major layout: counts (... x samples x genes, any memory order) to a
    new C-ordered array, each sample's genes contiguous."""
    log_scale = np.log2((np.asarray(lib_size, dtype=np.float64) + 2.0 * prior_count) / 1e6)
    if counts.dtype.kind not in "iu":
        E = np.add(counts, prior_count, order="C")
        np.log2(E, out=E)
        E -= log_scale[..., None]
        return E
    table, E = _log2_table(prior_count), np.empty(counts.shape)
    samples = counts.reshape(-1, counts.shape[-1])
    rows, scales = E.reshape(samples.shape), np.broadcast_to(log_scale, counts.shape[:-1]).ravel()
    # One sample at a time, so that its indices and logarithms stay in the CPU cache.
    for i, sample in enumerate(samples):
        np.take(table, sample.astype(np.intp), mode="clip", out=rows[i])
        rows[i] -= scales[i]
    if counts.max(initial=0) >= _LOG_TABLE_SIZE:
        large = counts >= _LOG_TABLE_SIZE
        E[large] = (
            np.log2(counts[large] + prior_count)
            - np.broadcast_to(log_scale[..., None], counts.shape)[large]
        )
    return E


@cache
def _log2_table(prior_count: float) -> np.ndarray:
    """log2(k + prior_count) for k = 0, 1, ..., _LOG_TABLE_SIZE - 1 (read-only)."""
    table = np.log2(np.arange(_LOG_TABLE_SIZE, dtype=np.float64) + prior_count)
    table.flags.writeable = False
    return table


def design_matrix(groups: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """The cell-means design ``~0 + group``: one indicator column per sorted group level."""
    labels = [str(g) for g in groups]
    levels = sorted(set(labels))
    index = {level: j for j, level in enumerate(levels)}
    X = np.zeros((len(labels), len(levels)))
    X[np.arange(len(labels)), [index[g] for g in labels]] = 1.0
    return X, levels


def _estimable_columns(X: np.ndarray) -> np.ndarray:
    """Columns LINPACK's limited-pivoting QR keeps: those not (nearly) spanned by earlier ones."""
    keep: list[int] = []
    for j in range(X.shape[1]):
        col = X[:, j]
        norm = np.linalg.norm(col)
        if norm == 0.0:
            continue
        if keep:
            basis, _ = np.linalg.qr(X[:, keep])
            col = col - basis @ (basis.T @ col)
        if np.linalg.norm(col) >= _QR_TOL * norm:
            keep.append(j)
    return np.asarray(keep, dtype=np.intp)


def _row_patterns(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a boolean mask and, for every row, the index of its pattern."""
    if mask.shape[1] <= 62:
        keys = mask.astype(np.int64) @ (np.int64(1) << np.arange(mask.shape[1], dtype=np.int64))
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        return mask[first], inverse.ravel()
    patterns, inverse = np.unique(mask, axis=0, return_inverse=True)
    return patterns, inverse.ravel()


def lm_fit(expr: np.ndarray, X: np.ndarray, weights: np.ndarray | None = None) -> LinearFit:
    """Least squares for every gene at once, as limma's lmFit (lm.series) does.

    Genes with missing values use only their observed samples (grouped by missingness
    pattern); design columns that become inestimable get NA coefficients, as in R.
    """
    Y = np.asarray(expr, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    n, p = X.shape
    if Y.shape[-1] != n:
        raise DesignError(f"expression has {Y.shape[-1]} samples but the design has {n} rows")
    if np.linalg.matrix_rank(X) < p:
        raise DesignError(f"design matrix ({n} x {p}) is not of full column rank")
    lead = Y.shape[:-1]
    Y = Y.reshape(-1, n)
    Q, R = np.linalg.qr(X)
    Rinv = np.linalg.inv(R)
    cov = Rinv @ Rinv.T

    complete = None
    if weights is None:
        complete = _fit_complete(Y, Q @ Rinv.T, np.linalg.qr(X, mode="complete")[0][:, p:])
    if complete is not None:
        amean, coef, sigma = complete
        df = np.broadcast_to(float(n - p), (Y.shape[0],))
        stdev = np.broadcast_to(np.sqrt(np.diag(cov)), coef.shape)
    else:
        amean = _row_mean(Y)
        finite = np.isfinite(Y)
        W = None
        if weights is not None:
            W = np.broadcast_to(np.asarray(weights, dtype=np.float64), lead + (n,)).reshape(-1, n)
            W = np.where(W > 0, W, np.nan)
            finite &= np.isfinite(W)
        coef = np.full((Y.shape[0], p), np.nan)
        stdev = np.full((Y.shape[0], p), np.nan)
        sigma = np.full(Y.shape[0], np.nan)
        df = np.zeros(Y.shape[0])
        patterns, inverse = _row_patterns(finite)
        for k, observed in enumerate(patterns):
            rows = np.flatnonzero(inverse == k)
            _fit_pattern(Y, W, X, observed, rows, coef, stdev, sigma, df)

    return LinearFit(
        coefficients=coef.reshape(lead + (p,)),
        stdev_unscaled=stdev.reshape(lead + (p,)),
        sigma=sigma.reshape(lead),
        df_residual=df.reshape(lead),
        cov_coefficients=cov,
        amean=amean.reshape(lead),
    )


def _fit_complete(
    Y: np.ndarray, solve: np.ndarray, Q2: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Means, coefficients and sigma of genes without missing values; None if any is missing.

    sigma comes from the residual effects Q2'y, as in lm.series (an orthogonal map: nothing
    cancels), and each block of genes stays in cache while its three products are taken.
    """
    rows, n = Y.shape
    amean, coef = np.empty(rows), np.empty((rows, solve.shape[1]))
    sigma = np.full(rows, np.nan)
    mean_weights = np.full(n, 1.0 / n)
    rss_weights = np.full(Q2.shape[1], 1.0 / max(Q2.shape[1], 1))
    effects = np.empty((min(rows, _BLOCK), Q2.shape[1]))
    for start in range(0, rows, _BLOCK):
        y = Y[start : start + _BLOCK]
        stop = start + len(y)
        with np.errstate(invalid="ignore", over="ignore"):
            np.matmul(y, mean_weights, out=amean[start:stop])
            np.matmul(y, solve, out=coef[start:stop])
            if Q2.shape[1]:
                e = effects[: len(y)]
                np.matmul(y, Q2, out=e)
                np.square(e, out=e)
                np.matmul(e, rss_weights, out=sigma[start:stop])
    if not np.isfinite(amean).all():
        return None
    return amean, coef, np.sqrt(sigma, out=sigma)


def _row_mean(Y: np.ndarray) -> np.ndarray:
    """rowMeans(na.rm = TRUE): NaN values skipped (infinite ones kept), NaN for an empty row."""
    present = ~np.isnan(Y)
    count = present.sum(axis=-1)
    total = np.where(present, Y, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _fit_pattern(
    Y: np.ndarray,
    W: np.ndarray | None,
    X: np.ndarray,
    observed: np.ndarray,
    rows: np.ndarray,
    coef: np.ndarray,
    stdev: np.ndarray,
    sigma: np.ndarray,
    df: np.ndarray,
) -> None:
    """Fit the genes in ``rows`` that share one pattern of observed samples, in place."""
    if not observed.any():
        return
    Xo = X[observed]
    est = _estimable_columns(Xo)
    if not est.size:
        return
    Xe = Xo[:, est]
    n_obs, rank = Xe.shape
    Yo = Y[np.ix_(rows, np.flatnonzero(observed))]
    if W is None:
        Q, R = np.linalg.qr(Xe)
        Rinv = np.linalg.inv(R)
        beta = Yo @ (Q @ Rinv.T)
        resid = Yo - beta @ Xe.T
        rss = np.einsum("gn,gn->g", resid, resid)
        se = np.broadcast_to(np.sqrt(np.sum(Rinv * Rinv, axis=1)), beta.shape)
    else:
        Wo = W[np.ix_(rows, np.flatnonzero(observed))]
        # Weighted normal equations per gene (limma's lm.wfit on sqrt(w) * X).
        xtwx = np.einsum("gn,np,nq->gpq", Wo, Xe, Xe)
        inv = np.linalg.inv(xtwx)
        beta = np.einsum("gpq,gq->gp", inv, np.einsum("gn,np->gp", Wo * Yo, Xe))
        resid = Yo - beta @ Xe.T
        rss = np.einsum("gn,gn->g", Wo * resid, resid)
        se = np.sqrt(np.einsum("gpp->gp", inv))
    coef[np.ix_(rows, est)] = beta
    stdev[np.ix_(rows, est)] = se
    df[rows] = n_obs - rank
    if n_obs > rank:
        sigma[rows] = np.sqrt(rss / (n_obs - rank))


def contrasts_fit(fit: LinearFit, contrasts: np.ndarray) -> LinearFit:
    """Re-express a fit in terms of contrasts (p x k matrix), as limma's contrasts.fit."""
    C = np.asarray(contrasts, dtype=np.float64)
    if C.ndim == 1:
        C = C[:, None]
    cov = fit.cov_coefficients
    coef = fit.coefficients
    stdev = fit.stdev_unscaled
    used = np.abs(C).sum(axis=1) != 0
    if not used.all():
        C, coef, stdev, cov = C[used], coef[..., used], stdev[..., used], cov[np.ix_(used, used)]
    scale = np.sqrt(np.diag(cov))
    cor = cov / np.outer(scale, scale)
    na_coef = np.isnan(coef)
    any_na = bool(na_coef.any())
    if any_na:
        coef = np.where(na_coef, 0.0, coef)
        stdev = np.where(na_coef, 1e30, stdev)
    new_coef = coef @ C
    new_cov = C.T @ cov @ C
    if np.all(np.abs(np.tril(cor, -1)) < 1e-14):
        if stdev.ndim > 1 and stdev.strides[-2] == 0 and not any_na:
            # Every gene shares one set of standard errors (no missing values, no weights).
            row = np.sqrt((stdev[..., :1, :] ** 2) @ (C**2))
            new_stdev = np.broadcast_to(row, coef.shape[:-1] + (C.shape[1],))
        else:
            new_stdev = np.sqrt((stdev**2) @ (C**2))
    else:
        chol = np.linalg.cholesky(cor).T
        ruc = np.einsum("ab,...b,bk->...ak", chol, stdev, C)
        new_stdev = np.sqrt(np.sum(ruc**2, axis=-2))
    if any_na:
        huge = new_stdev > 1e20
        new_coef = np.where(huge, np.nan, new_coef)
        new_stdev = np.where(huge, np.nan, new_stdev)
    return LinearFit(
        coefficients=new_coef,
        stdev_unscaled=new_stdev,
        sigma=fit.sigma,
        df_residual=fit.df_residual,
        cov_coefficients=new_cov,
        amean=fit.amean,
    )


def trigamma_inverse(x: np.ndarray) -> np.ndarray:
    """Solve trigamma(y) = x by Newton's method, as limma's trigammaInverse."""
    x = np.asarray(x, dtype=np.float64)
    y = np.full(x.shape, np.nan)
    big = x > 1e7
    small = (x < 1e-6) & (x >= 0)
    mid = (x >= 1e-6) & ~big
    y[big] = 1.0 / np.sqrt(x[big])
    y[small] = 1.0 / x[small]
    xm = x[mid]
    ym = 0.5 + 1.0 / xm
    active = np.ones(ym.shape, dtype=bool)
    for _ in range(51):
        if not active.any():
            break
        tri = _trigamma(ym[active])
        dif = tri * (1.0 - tri / xm[active]) / _tetragamma(ym[active])
        ym[active] += dif
        done = -dif / ym[active] < 1e-8
        idx = np.flatnonzero(active)
        active[idx[done]] = False
    y[mid] = ym
    return y


def _trigamma(y: np.ndarray) -> np.ndarray:
    """polygamma(1, y), as SciPy computes it (zeta(2, y)) without its Python wrapper's cost."""
    return special.zeta(2, y)


def _tetragamma(y: np.ndarray) -> np.ndarray:
    """polygamma(2, y) = -2 zeta(3, y), likewise."""
    return -2.0 * special.zeta(3, y)


def fit_f_dist(x: np.ndarray, df1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Moment estimates of a scaled F prior (scale s0², df d0) per dataset: limma's fitFDist."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[-1] == 1:
        return x[..., 0].copy(), np.zeros(x.shape[:-1])
    df1 = np.broadcast_to(np.asarray(df1, dtype=np.float64), x.shape)
    d_first = df1.flat[0]
    if 1e-15 < d_first < np.inf and np.all(_collapse(df1, -1) == d_first) and np.all(x > -1e-15):
        return _fit_f_dist_complete(x, d_first)
    ok = np.isfinite(df1) & (df1 > 1e-15) & np.isfinite(x) & (x > -1e-15)
    nok = ok.sum(axis=-1)
    xx = np.where(ok, np.maximum(x, 0.0), np.nan)
    m = np.median(xx, axis=-1) if ok.all() else np.nanmedian(xx, axis=-1)
    m = np.where(m == 0, 1.0, m)
    xx = np.maximum(xx, 1e-5 * m[..., None])
    d = np.where(ok, df1, 1.0) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        if ok.all() and np.all(d == d.flat[0]):
            d0 = d.flat[0]
            e = np.log(xx) - (special.digamma(d0) - np.log(d0))
            emean = e.mean(axis=-1)
            evar = ((e - emean[..., None]) ** 2).sum(axis=-1) / (nok - 1)
            evar = evar - special.polygamma(1, d0)
        else:
            e = np.where(ok, np.log(xx) - special.digamma(d) + np.log(d), 0.0)
            emean = e.sum(axis=-1) / nok
            evar = np.where(ok, (e - emean[..., None]) ** 2, 0.0).sum(axis=-1) / (nok - 1)
            evar = evar - np.where(ok, special.polygamma(1, d), 0.0).sum(axis=-1) / nok
        df2 = np.where(evar > 0, 2 * trigamma_inverse(np.where(evar > 0, evar, 1.0)), np.inf)
        s20 = np.where(
            evar > 0,
            np.exp(emean + special.digamma(df2 / 2) - np.log(df2 / 2)),
            np.where(ok, xx, 0.0).sum(axis=-1) / nok,
        )
    single = nok == 1
    if single.any():
        s20 = np.where(single, np.where(ok, x, 0.0).sum(axis=-1), s20)
        df2 = np.where(single, 0.0, df2)
    return s20, df2


def _fit_f_dist_complete(x: np.ndarray, df1: float) -> tuple[np.ndarray, np.ndarray]:
    """fitFDist when every variance is usable and all share one df (no missing values)."""
    x = np.maximum(x, 0.0)
    # Median by partitioning the copy in place (the sums below do not depend on order); for an
    # even count the lower middle value is the largest of the lower half.
    half = x.shape[-1] // 2
    x.partition(half, axis=-1)
    m = x[..., half] if x.shape[-1] % 2 else (x[..., :half].max(axis=-1) + x[..., half]) / 2
    m = np.where(m == 0, 1.0, m)
    np.maximum(x, 1e-5 * m[..., None], out=x)
    d = df1 / 2
    # The mean and variance of log(x) - (digamma(d) - log(d)): the shift moves only the mean.
    e = np.log(x)
    log_mean = e.mean(axis=-1)
    e -= log_mean[..., None]
    emean = log_mean - (special.digamma(d) - np.log(d))
    evar = np.einsum("...i,...i->...", e, e) / (x.shape[-1] - 1) - _trigamma(d)
    positive = evar > 0
    df2 = np.full(evar.shape, np.inf)
    s20 = np.empty(evar.shape)
    if positive.any():
        df2[positive] = 2 * trigamma_inverse(evar[positive])
        half = df2[positive] / 2
        s20[positive] = np.exp(emean[positive] + special.digamma(half) - np.log(half))
    if not positive.all():
        # Infinite prior df: the prior is the mean of the (offset) variances, as in fitFDist.
        s20[~positive] = x[~positive].mean(axis=-1)
    return s20, df2


def squeeze_var(var: np.ndarray, df: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior variances shrunk toward the fitted prior: (var_post, var_prior, df_prior)."""
    var = np.asarray(var, dtype=np.float64)
    df = np.broadcast_to(np.asarray(df, dtype=np.float64), var.shape)
    if not np.all(_collapse(df, -1)):
        var = np.where(df == 0, 0.0, var)
    var_prior, df_prior = fit_f_dist(var, df)
    if np.any(np.isnan(df_prior)):
        raise DesignError("could not estimate the prior degrees of freedom (no usable variances)")
    vp, dp = var_prior[..., None], df_prior[..., None]
    df_s = _collapse(df, -1)
    with np.errstate(invalid="ignore"):
        var_post = var * (df_s / (df_s + dp)) + dp * vp / (df_s + dp)
    infinite = ~np.isfinite(df_prior)
    if infinite.any():
        var_post[infinite] = vp[infinite]
    return var_post, var_prior, df_prior


def ebayes(
    fit: LinearFit, proportion: float = 0.01, stdev_coef_lim: tuple[float, float] = (0.1, 4.0)
) -> EBayesFit:
    """Empirical Bayes moderated t, p-values and B-statistics, as limma's eBayes."""
    df_res = fit.df_residual
    if np.all(df_res == 0):
        raise DesignError("no residual degrees of freedom in the linear model fits")
    if not np.any(np.isfinite(fit.sigma)):
        raise DesignError("no finite residual standard deviations")
    s2_post, s2_prior, df_prior = squeeze_var(fit.sigma**2, df_res)
    coef, su = fit.coefficients, fit.stdev_unscaled
    # Shared standard errors and df (no missing values, no weights) stay one row per dataset.
    su_s, df_s = _collapse(su, -2), _collapse(df_res, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = coef / (su_s * np.sqrt(s2_post)[..., None])
    df_total = np.minimum(df_s + df_prior[..., None], df_res.sum(axis=-1, keepdims=True))
    p_value = np.empty_like(t)
    for idx in np.ndindex(*df_total.shape[:-1]):
        dft = df_total[idx]
        if dft.min() == dft.max():
            p_value[idx] = t_test_p(t[idx], dft[0])
        else:
            p_value[idx] = 2 * special.stdtr(dft[:, None], -np.abs(t[idx]))

    lim2 = np.asarray(stdev_coef_lim, dtype=np.float64) ** 2
    var_prior = np.empty(s2_prior.shape + (t.shape[-1],))
    for idx in np.ndindex(*s2_prior.shape):
        for j in range(t.shape[-1]):
            var_prior[idx + (j,)] = _tmixture(
                t[idx][:, j],
                su[idx][:, j],
                np.broadcast_to(df_total[idx], df_res.shape[-1:]),
                proportion,
                lim2 / s2_prior[idx],
            )
    var_prior = np.where(np.isnan(var_prior), 1.0 / s2_prior[..., None], var_prior)

    lods = _b_statistic(t, su_s, var_prior, df_total, df_prior, proportion)
    return EBayesFit(
        t=t,
        p_value=p_value,
        lods=lods,
        df_total=np.broadcast_to(df_total, df_res.shape),
        s2_post=s2_post,
        s2_prior=s2_prior,
        df_prior=df_prior,
    )


def _b_statistic(
    t: np.ndarray,
    su_s: np.ndarray,
    var_prior: np.ndarray,
    df_total: np.ndarray,
    df_prior: np.ndarray,
    proportion: float,
) -> np.ndarray:
    """limma's B: log-odds that a gene is differentially expressed (eBayes' ``lods``)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        su2 = su_s**2
        r = (su2 + var_prior[..., None, :]) / su2
        t2 = t**2
        dft = df_total[..., None]
        kernel = t2 + dft
        denominator = t2 / r
        denominator += dft
        kernel /= denominator
        np.log(kernel, out=kernel)
        kernel *= (1 + dft) / 2
        infinite_prior = df_prior > 1e6
        if infinite_prior.any():
            kernel[infinite_prior] = (t2 * (1 - 1 / r) / 2)[infinite_prior]
        return np.log(proportion / (1 - proportion)) - np.log(r) / 2 + kernel


def _collapse(a: np.ndarray, axis: int) -> np.ndarray:
    """A broadcast (stride-0) axis cut to length one, so arithmetic on it is not repeated."""
    if a.ndim and a.shape[axis] > 1 and a.strides[axis] == 0:
        return np.take(a, [0], axis=axis)
    return a


def _tmixture(
    tstat: np.ndarray, su: np.ndarray, df: np.ndarray, proportion: float, v0_lim: np.ndarray
) -> float:
    """Prior variance of the non-null coefficients: limma's tmixture.vector."""
    shared_df = df.ndim == 0 or df.strides[-1] == 0  # one df broadcast to every gene
    if np.isnan(np.add.reduce(tstat)):  # a sum is NaN if any value is (and seldom otherwise)
        keep = ~np.isnan(tstat)
        tstat, su = tstat[keep], su[keep]
        df = df if shared_df else df[keep]
    tstat = np.abs(tstat)
    ngenes = tstat.size
    ntarget = int(np.ceil(proportion / 2 * ngenes))
    if ntarget < 1:
        return np.nan
    p = max(ntarget / ngenes, proportion)
    max_df = df.flat[0] if shared_df else df.max()
    lower = None if shared_df else df < max_df
    if lower is not None and lower.any():
        tstat = tstat.copy()
        log_tail = stats.t.logsf(tstat[lower], df[lower])
        tstat[lower] = -special.stdtrit(max_df, np.exp(log_tail))
    top = _largest(tstat, ntarget)
    tt = tstat[top]
    v1 = su[top] ** 2
    r = np.arange(1, ntarget + 1)
    p0 = 2 * special.stdtr(max_df, -tt)
    ptarget = ((r - 0.5) / ngenes - (1 - p) * p0) / p
    v0 = np.zeros(ntarget)
    pos = ptarget > p0
    if pos.any():
        qtarget = -special.stdtrit(max_df, ptarget[pos] / 2)
        v0[pos] = v1[pos] * ((tt[pos] / qtarget) ** 2 - 1)
    v0 = np.minimum(np.maximum(v0, v0_lim[0]), v0_lim[1])
    return float(v0.mean())


# t_test_p's pieces of |t|: [0, 1/8), then 16 per octave (the float's exponent and first four
# mantissa bits) up to 2^20; beyond, and where p nears underflow, p is computed exactly.
_P_MANTISSA_BITS = 4
_P_SHIFT = 52 - _P_MANTISSA_BITS
_P_FIRST = int(np.array(0.125).view(np.int64)) >> _P_SHIFT
_P_PIECES = 1 + 23 * (1 << _P_MANTISSA_BITS)
_P_LEFT = np.concatenate(
    [[0.0], (np.arange(_P_FIRST, _P_FIRST + _P_PIECES) << _P_SHIFT).view(np.float64)]
)
_P_WIDTH = np.diff(_P_LEFT)
_P_LEFT = _P_LEFT[:-1]
_P_NODES = 8
_CHEB_Z = np.cos(np.pi * (np.arange(_P_NODES) + 0.5) / _P_NODES)
_CHEB_BASIS = np.cos(np.outer(np.arange(_P_NODES), np.arange(_P_NODES) + 0.5) * np.pi / _P_NODES)
_CHEB_BASIS *= 2.0 / _P_NODES
_CHEB_BASIS[0] /= 2
# Chebyshev coefficients to powers of z: row j holds T_j(z)'s coefficients.
_CHEB_TO_POWER = np.zeros((_P_NODES, _P_NODES))
for _j in range(_P_NODES):
    _CHEB_TO_POWER[_j, : _j + 1] = chebyshev.cheb2poly(np.eye(_P_NODES)[_j])


def t_test_p(t: np.ndarray, df: float) -> np.ndarray:
    """Two-sided p-values 2 * pt(-|t|, df) for one df, ~1e-13 relative, several times faster
    than stdtr.

    log p is interpolated on pieces of |t| (16 per octave, found from the float's bits, so no
    logarithm is taken) by a degree-7 polynomial through 8 exact Chebyshev nodes, computed only
    for the pieces some gene falls in. Where p nears underflow, and for |t| >= 2^20, inf or NaN,
    p is the exact incomplete beta.
    """
    x = np.abs(np.asarray(t, dtype=np.float64))
    bits = x.view(np.int64)
    # 1. Each gene's piece, and where it lies in it (z in [-1, 1)).
    piece = bits >> _P_SHIFT
    piece -= _P_FIRST - 1
    np.maximum(piece, 0, out=piece)
    z = (bits & ((1 << _P_SHIFT) - 1)).astype(np.float64)
    z *= 2.0 / (1 << _P_SHIFT)
    z -= 1.0
    first = np.flatnonzero(piece == 0)
    z.reshape(-1)[first] = x.reshape(-1)[first] * (2 / _P_WIDTH[0]) - 1.0
    # 2. log p at the nodes of the pieces in use, as polynomial coefficients (one row per power).
    in_use = np.bincount(np.minimum(piece, _P_PIECES).ravel(), minlength=_P_PIECES + 1)
    used = np.flatnonzero(in_use)
    used = used[used < _P_PIECES]
    nodes = _P_LEFT[used, None] + (_CHEB_Z + 1) / 2 * _P_WIDTH[used, None]
    p_nodes = 2 * special.stdtr(df, -nodes)
    good = (p_nodes > 1e-290).all(axis=1)
    coef = np.zeros((_P_NODES, _P_PIECES))
    coef[:, used] = (
        np.log(np.where(good[:, None], p_nodes, 1.0)) @ _CHEB_BASIS.T @ _CHEB_TO_POWER
    ).T
    exact = np.ones(_P_PIECES + 1, dtype=bool)
    exact[used] = ~good
    # 3. Horner's rule with each gene's coefficients, then p = exp(log p).
    p, c = np.take(coef[-1], piece, mode="clip"), np.empty_like(z)
    for j in range(_P_NODES - 2, -1, -1):
        p *= z
        p += np.take(coef[j], piece, mode="clip", out=c)
    np.exp(p, out=p)
    np.minimum(p, 1.0, out=p)
    if exact[in_use > 0].any():
        exact = np.take(exact, piece, mode="clip")
        p[exact] = 2 * special.stdtr(df, -x[exact])
    return p


def _largest(x: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values, largest first, ties by index: order(-x)[1:k] in R."""
    sample, rank = x[::8], 2 * (k // 8) + 2
    candidates = np.arange(x.size)
    if sample.size > rank:
        # Every value at or above a high quantile of a 1-in-8 sample; all of them if too few.
        above = np.flatnonzero(x >= np.partition(sample, -rank)[-rank])
        if above.size >= k:
            candidates = above
    return candidates[np.lexsort((candidates, -x[candidates]))][:k]


# Sort keys for up to 2^17 values: the top 47 bits of a value (>= 0) above its 17-bit index.
_KEY_INDEX_BITS = 17


def _sorted_nonnegative(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """argsort of values >= 0 (NaN last), ties in index order, and the sorted values.

    Each value's float64 bit pattern (monotone for x >= 0) cut to its top 47 bits, above its
    17-bit index, is one 64-bit key: NumPy's SIMD sort of the keys orders the values to 2^-36
    relative precision and ties by index. The values gathered in that order are checked, and
    only when two values closer than that came out of order does a stable sort finish it.
    """
    if x.size >= 1 << _KEY_INDEX_BITS:
        order = np.argsort(x, kind="stable")
        return order, x[order]
    keys = np.right_shift(x.view(np.uint64), 64 - 47)
    keys <<= _KEY_INDEX_BITS
    keys |= np.arange(x.size, dtype=np.uint64)
    keys.sort()
    keys &= (1 << _KEY_INDEX_BITS) - 1
    order = keys.astype(np.intp)
    values = x[order]
    n = np.count_nonzero(values == values)
    if n and not (values[1:n] >= values[: n - 1]).all():
        fix = np.argsort(values, kind="stable")
        order, values = order[fix], values[fix]
    return order, values


def p_adjust_bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg along the last axis, NaN kept and not counted (R's p.adjust)."""
    p = np.asarray(p, dtype=np.float64)
    out = np.empty_like(p)
    flat_p, flat_out = p.reshape(-1, p.shape[-1]), out.reshape(-1, p.shape[-1])
    for row, adjusted in zip(flat_p, flat_out, strict=True):
        adjusted[:] = _bh(row)[0]
    return out


def _bh(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini-Hochberg adjusted p-values of one vector (NaN kept, not counted), and the order
    that sorts the p-values (NaN last)."""
    order, _, q = _bh_sorted(p)
    adjusted = np.empty_like(p)
    adjusted[order] = q
    return adjusted, order


def _bh_sorted(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The order that sorts the p-values (NaN last), the sorted p-values and their
    Benjamini-Hochberg adjustments in that order (NaN for NaN)."""
    order, ps = _sorted_nonnegative(p)
    n = np.count_nonzero(ps == ps)
    q = np.full_like(ps, np.nan)
    if n:
        np.multiply(ps[:n], _bh_factors(n), out=q[:n])
        np.minimum.accumulate(q[n - 1 :: -1], out=q[n - 1 :: -1])
        np.minimum(q[:n], 1.0, out=q[:n])
    return order, ps, q


@cache
def _bh_factors(n: int) -> np.ndarray:
    """n / i for i = 1 .. n (read-only): BH's factor for the i-th smallest of n p-values."""
    factors = n / np.arange(1, n + 1)
    factors.flags.writeable = False
    return factors


def top_table(fit: LinearFit, eb: EBayesFit, coef: int = 0) -> DEBatch:
    """topTable(number = Inf, sort.by = "none") for one contrast, in gene order."""
    p = np.asarray(eb.p_value[..., coef])
    adjusted, order = np.empty_like(p), np.empty(p.shape, dtype=np.intp)
    for idx in np.ndindex(*p.shape[:-1]):
        adjusted[idx], order[idx] = _bh(p[idx])
    return DEBatch(
        log_fc=fit.coefficients[..., coef],
        ave_expr=fit.amean,
        t=eb.t[..., coef],
        p_value=p,
        adj_p_value=adjusted,
        b=eb.lods[..., coef],
        order=order,
    )


def lowess(
    x: np.ndarray, y: np.ndarray, f: float = 2 / 3, iters: int = 3, delta: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """R's lowess (Cleveland's clowess, stats/src/lowess.c): (sorted x, smoothed y)."""
    order = np.argsort(x, kind="stable")
    x = np.asarray(x, dtype=np.float64)[order]
    y = np.asarray(y, dtype=np.float64)[order]
    n = x.size
    if delta is None:
        delta = 0.01 * (x[-1] - x[0])
    if n < 2:
        return x, y.copy()
    ns = max(2, min(n, int(f * n + 1e-7)))
    ys = np.empty(n)
    rw = np.ones(n)
    span = x[-1] - x[0]
    for iteration in range(1, iters + 2):
        robust = iteration > 1
        nleft, nright, last, i = 0, ns - 1, -1, 0
        while True:
            if nright < n - 1:
                k = np.arange(nleft, n - ns)
                move = (x[i] - x[k]) > (x[k + ns] - x[i])
                stop = np.flatnonzero(~move)
                nleft = int(k[stop[0]]) if stop.size else n - ns
                nright = nleft + ns - 1
            ys[i], ok = _lowest(x, y, x[i], nleft, nright, rw if robust else None, span)
            if not ok:
                ys[i] = y[i]
            if last < i - 1:
                j = np.arange(last + 1, i)
                alpha = (x[j] - x[last]) / (x[i] - x[last])
                ys[j] = alpha * ys[i] + (1 - alpha) * ys[last]
            last = i
            cut = x[last] + delta
            tie_end = int(np.searchsorted(x, x[last], side="right")) - 1
            if tie_end > last:
                ys[last + 1 : tie_end + 1] = ys[last]
                last = tie_end
            beyond = int(np.searchsorted(x, cut, side="right"))
            i = max(last + 1, beyond - 1)
            if last >= n - 1:
                break
        res = y - ys
        sc = np.abs(res).mean()
        if iteration > iters:
            break
        a = np.abs(res)
        m1 = n // 2
        part = np.partition(a, [n - m1 - 1, m1])
        cmad = 3.0 * (part[m1] + part[n - m1 - 1]) if n % 2 == 0 else 6.0 * part[m1]
        if cmad < 1e-7 * sc:
            break
        rw = np.where(
            a <= 0.001 * cmad, 1.0, np.where(a <= 0.999 * cmad, (1 - (a / cmad) ** 2) ** 2, 0.0)
        )
    return x, ys


def _lowest(
    x: np.ndarray,
    y: np.ndarray,
    xs: float,
    nleft: int,
    nright: int,
    rw: np.ndarray | None,
    span: float,
) -> tuple[float, bool]:
    """One locally weighted linear fit at ``xs`` (clowess's ``lowest``)."""
    n = x.size
    h = max(xs - x[nleft], x[nright] - xs)
    h9, h1 = 0.999 * h, 0.001 * h
    end = min(n, max(nright + 1, int(np.searchsorted(x, xs, side="right"))) + 1)
    while True:
        r = np.abs(x[nleft:end] - xs)
        beyond = np.flatnonzero((r > h9) & (x[nleft:end] > xs))
        if beyond.size or end == n:
            break
        end = n
    nrt = nleft + (int(beyond[0]) if beyond.size else end - nleft)
    xw, yw, r = x[nleft:nrt], y[nleft:nrt], r[: nrt - nleft]
    w = np.where(r <= h9, np.where(r <= h1, 1.0, (1 - (r / h) ** 3) ** 3), 0.0)
    if rw is not None:
        w = w * rw[nleft:nrt]
    a = w.sum()
    if a <= 0:
        return 0.0, False
    w = w / a
    if h > 0:
        centre = np.sum(w * xw)
        b = xs - centre
        c = np.sum(w * (xw - centre) ** 2)
        if np.sqrt(c) > 0.001 * span:
            w = w * (b / c * (xw - centre) + 1.0)
    return float(np.sum(w * yw)), True


def voom_weights(
    counts: np.ndarray, X: np.ndarray, lib_size: np.ndarray | None = None, span: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """voom's log-CPM and precision weights from a lowess mean-variance trend: (E, weights)."""
    counts = np.asarray(counts, dtype=np.float64)
    if lib_size is None:
        lib_size = counts.sum(axis=-2)
    lib_size = np.broadcast_to(
        np.asarray(lib_size, dtype=np.float64), counts.shape[:-2] + (counts.shape[-1],)
    )
    E = log_cpm(counts, lib_size)
    fit = lm_fit(E, X)
    weights = np.empty_like(E)
    for idx in np.ndindex(*counts.shape[:-2]):
        lib = lib_size[idx]
        sx = fit.amean[idx] + np.mean(np.log2(lib + 1)) - np.log2(1e6)
        sy = np.sqrt(fit.sigma[idx])
        expressed = counts[idx].sum(axis=-1) != 0
        lx, ly = lowess(sx[expressed], sy[expressed], f=span)
        ux, start = np.unique(lx, return_index=True)
        uy = np.add.reduceat(ly, start) / np.diff(np.append(start, lx.size))
        fitted = fit.coefficients[idx] @ X.T
        fitted_logcount = np.log2(1e-6 * 2.0**fitted * (lib + 1))
        weights[idx] = 1.0 / np.interp(fitted_logcount, ux, uy) ** 4
    return E, weights


def _check_design(
    groups: Sequence[str], contrast: tuple[str, str], config: DEConfig
) -> tuple[np.ndarray, np.ndarray]:
    """The design and contrast vector for ``groups`` (read-only, shared by the calls with the
    same groups), or a DesignError saying what is wrong."""
    return _design(tuple(str(g) for g in groups), tuple(contrast), config.min_replicates)


@lru_cache(maxsize=256)
def _design(
    groups: tuple[str, ...], contrast: tuple[str, str], min_replicates: int
) -> tuple[np.ndarray, np.ndarray]:
    """_check_design's work, once per distinct design."""
    X, levels = design_matrix(groups)
    for level in contrast:
        if level not in levels:
            raise DesignError(f"contrast group {level!r} is not among the groups {levels}")
    if contrast[0] == contrast[1]:
        raise DesignError(f"contrast compares group {contrast[0]!r} with itself")
    sizes = X.sum(axis=0)
    for level, size in zip(levels, sizes, strict=True):
        if size < min_replicates:
            raise DesignError(
                f"group {level!r} has {int(size)} sample(s); at least "
                f"{min_replicates} replicates are needed"
            )
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise DesignError(f"design ~0 + group ({X.shape[0]} x {X.shape[1]}) is not of full rank")
    if X.shape[0] <= X.shape[1]:
        raise DesignError(
            f"{X.shape[0]} samples in {X.shape[1]} groups leave no residual degrees of freedom"
        )
    c = np.zeros(len(levels))
    c[levels.index(contrast[0])] = 1.0
    c[levels.index(contrast[1])] = -1.0
    X.flags.writeable = c.flags.writeable = False
    return X, c


def _check_counts(counts: np.ndarray) -> np.ndarray:
    """Library sizes; counts must be non-negative, not all zero, and every sample have reads."""
    lowest = counts.min()
    if np.isnan(lowest):
        lowest = np.nanmin(counts)
    if lowest < 0:
        raise DesignError("counts must be non-negative; got negative values")
    if counts.dtype.kind in "iu":
        lib = counts.sum(axis=-2, dtype=np.int64).astype(np.float64)
    else:
        lib = np.ones(counts.shape[-2]) @ counts
        if np.isnan(lib).any():
            lib = np.nansum(counts, axis=-2)
    if np.any(np.nansum(lib, axis=-1) == 0):
        raise DesignError("all counts are zero: nothing to test")
    empty = np.argwhere(lib == 0)
    if empty.size:
        raise DesignError(f"sample {int(empty[0][-1])} has no counts (library size 0)")
    return lib


def limma_batch(
    exprs: np.ndarray,
    groups: Sequence[str],
    contrast: tuple[str, str] = ("B", "A"),
    config: DEConfig = DEConfig(),
) -> DEBatch:
    """limma for many datasets (datasets x genes x samples) that share one design. Integer
    counts stay integers (their logarithms come from a table)."""
    Y, X, c = _checked_batch(exprs, groups, contrast, config)
    # One BLAS thread: the matrices are thin, and a caller may run datasets in parallel.
    with _blas_controller().limit(limits=1, user_api="blas"):
        first = _limma_dataset(Y[0], X, c, config)
        if len(Y) == 1:
            return DEBatch(**{f.name: getattr(first, f.name)[None] for f in fields(DEBatch)})
        out = {f.name: np.empty(Y.shape[:2], getattr(first, f.name).dtype) for f in fields(DEBatch)}
        for d, y in enumerate(Y):
            part = first if d == 0 else _limma_dataset(y, X, c, config)
            for name, values in out.items():
                values[d] = getattr(part, name)
    return DEBatch(**out)


def _checked_batch(
    exprs: np.ndarray, groups: Sequence[str], contrast: tuple[str, str], config: DEConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The expression as datasets x genes x samples, the design and the contrast, or a
    DesignError saying what is wrong."""
    Y = np.asarray(exprs)
    if Y.dtype.kind not in "iu":
        Y = Y.astype(np.float64, copy=False)
    if Y.ndim == 2:
        Y = Y[None]
    if Y.ndim != 3 or Y.shape[-1] != len(groups):
        raise DesignError(
            f"expected (datasets x genes x {len(groups)} samples), got shape {Y.shape}"
        )
    if config.input not in ("counts", "log", "raw"):
        raise DesignError(f"input must be 'counts', 'log' or 'raw', got {config.input!r}")
    if config.adjust != "BH":
        raise DesignError(f"only Benjamini-Hochberg ('BH') adjustment, got {config.adjust!r}")
    if Y.shape[1] < 2:
        raise DesignError(f"need at least 2 genes to estimate the prior, got {Y.shape[1]}")
    X, c = _check_design(groups, contrast, config)
    return Y, X, c


@cache
def _blas_controller() -> ThreadpoolController:
    """NumPy's BLAS, found once (inspecting the loaded libraries takes half a millisecond)."""
    return ThreadpoolController()


def _limma_dataset(
    y: np.ndarray, X: np.ndarray, c: np.ndarray, config: DEConfig, by_p: bool = False
) -> DEBatch:
    """The whole pipeline for one dataset (genes x samples): topTable columns, one per gene, in
    gene order or (``by_p``) by increasing p-value, NaN last (``order`` names each row's gene)."""
    if config.input in ("counts", "raw"):
        lib = _check_counts(y)
    if config.input == "counts" and config.voom:
        if np.isnan(y).any():
            raise DesignError("voom needs complete counts; got missing values")
        E, weights = voom_weights(y.astype(np.float64), X, lib)
        return _in_order(_limma_general(E, X, c, config, weights), by_p)
    if config.input == "counts":
        E = _log_cpm_by_sample(y.T, lib, config.prior_count)
    else:
        E = np.array(y.T, dtype=np.float64, order="C")
    complete = _limma_complete(E, X, c, config.proportion, by_p)
    return complete if complete is not None else _in_order(_limma_general(E.T, X, c, config), by_p)


def _in_order(table: DEBatch, by_p: bool) -> DEBatch:
    """A gene-order table, or its rows by p-value (``order`` kept: each row's gene)."""
    if not by_p:
        return table
    rows = table.order
    return DEBatch(
        **{f.name: getattr(table, f.name)[rows] for f in fields(DEBatch) if f.name != "order"},
        order=rows,
    )


def _limma_general(
    E: np.ndarray, X: np.ndarray, c: np.ndarray, config: DEConfig, weights=None
) -> DEBatch:
    """lmFit → contrasts.fit → eBayes → topTable for one dataset (genes x samples), for any
    design, missing values and weights."""
    w = None if weights is None else weights[None]
    fit = contrasts_fit(lm_fit(E[None], X, w), c)
    table = top_table(fit, ebayes(fit, proportion=config.proportion))
    return DEBatch(**{f.name: getattr(table, f.name)[0] for f in fields(DEBatch)})


def _limma_complete(
    E: np.ndarray, X: np.ndarray, c: np.ndarray, proportion: float, by_p: bool = False
) -> DEBatch | None:
    """limma for one dataset without missing values on a cell-means design (``~0 + group``), E
    samples x genes; None when a value is missing (then the general path fits it).

    The arithmetic of lmFit → contrasts.fit → eBayes → topTable written for this case: the
    coefficients are the group means, sigma^2 their pooled within-group variance, and every gene
    shares one unscaled standard error and one residual df, so the prior, the t tail and the
    B-statistic work on scalars and gene vectors. With ``by_p`` the rows come by p-value: the
    columns are gathered once in that order, and B (a function of t) and the adjusted p-values
    are computed in it.
    """
    n, k = X.shape
    # 1. Group means (lmFit's coefficients), their contrast and the residual sum of squares;
    # a value that is not finite makes its gene's mean so (inf - inf is NaN, quietly).
    with np.errstate(invalid="ignore"):
        amean, log_fc, rss, unscaled = _cell_means(E, X, c)
    if not np.isfinite(amean).all():
        return None
    df = float(n - k)
    s2 = np.divide(rss, df, out=rss)
    # 2. eBayes: the scaled-F prior of the variances (squeezeVar), the moderated t and its tail.
    s2_prior, df_prior = (float(v) for v in fit_f_dist(s2, df))
    if np.isnan(df_prior):
        raise DesignError("could not estimate the prior degrees of freedom (no usable variances)")
    if np.isfinite(df_prior):
        s2_post = s2 * (df / (df + df_prior)) + df_prior * s2_prior / (df + df_prior)
    else:
        s2_post = np.full_like(s2, s2_prior)
    su = np.sqrt(unscaled)
    t = log_fc / (su * np.sqrt(s2_post))
    df_total = min(df + df_prior, df * E.shape[1])
    p_value = t_test_p(t, df_total)
    # 3. The B-statistic, with tmixture's prior variance of the non-null log fold changes.
    lim2 = np.array([0.1, 4.0]) ** 2 / s2_prior
    var_prior = _tmixture(
        t, np.broadcast_to(su, t.shape), np.broadcast_to(df_total, t.shape), proportion, lim2
    )
    if np.isnan(var_prior):
        var_prior = 1.0 / s2_prior
    order, p_sorted, adjusted = _bh_sorted(p_value)
    if by_p:
        log_fc, amean, t, p_value = log_fc[order], amean[order], t[order], p_sorted
    else:
        adjusted, by_rank = np.empty_like(adjusted), adjusted
        adjusted[order] = by_rank
    b = _lods(t, su**2, var_prior, df_total, df_prior, proportion)
    return DEBatch(log_fc, amean, t, p_value, adjusted, b, order)


def _cell_means(
    E: np.ndarray, X: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """For a cell-means design and E samples x genes: each gene's mean over all samples, the
    contrast of its group means, its residual sum of squares, and the contrast's unscaled
    variance (sum of c_j^2 / n_j). The mean of all samples is the sum of the group sums."""
    genes = E.shape[1]
    total, rss = np.zeros(genes), np.zeros(genes)
    mean, deviation, log_fc = np.empty(genes), np.empty(genes), None
    unscaled = 0.0
    for j in range(X.shape[1]):
        rows = np.flatnonzero(X[:, j])
        if len(rows) > 1:
            np.add(E[rows[0]], E[rows[1]], out=mean)
        else:
            mean[:] = E[rows[0]]
        for i in rows[2:]:
            mean += E[i]
        total += mean
        mean /= len(rows)
        for i in rows:
            np.subtract(E[i], mean, out=deviation)
            deviation *= deviation
            rss += deviation
        if c[j]:
            unscaled += c[j] ** 2 / len(rows)
            if log_fc is None:
                log_fc = mean * c[j]
            elif c[j] == 1:
                log_fc += mean
            else:
                log_fc += mean * c[j]
    total /= X.shape[0]
    return total, log_fc, rss, unscaled


def _lods(
    t: np.ndarray, su2: float, var_prior: float, df_total: float, df_prior: float, proportion: float
) -> np.ndarray:
    """eBayes's B-statistic (log posterior odds of differential expression) for genes that
    share one unscaled variance and one total df."""
    r = (su2 + var_prior) / su2
    t2 = t * t
    if df_prior > 1e6:
        kernel = t2 * (1 - 1 / r) / 2
    else:
        kernel = t2 + df_total
        denominator = t2 / r
        denominator += df_total
        kernel /= denominator
        np.log(kernel, out=kernel)
        kernel *= (1 + df_total) / 2
    kernel += np.log(proportion / (1 - proportion)) - np.log(r) / 2
    return kernel


def limma(
    expr: np.ndarray,
    groups: Sequence[str],
    contrast: tuple[str, str] = ("B", "A"),
    config: DEConfig = DEConfig(),
    gene_ids: Sequence[str] | None = None,
) -> pl.DataFrame:
    """topTable for one dataset (genes x samples), contrast (B, A): logFC = mean(B) - mean(A)."""
    expr = np.asarray(expr, dtype=np.float64)
    if expr.ndim != 2:
        raise DesignError(f"expected a genes x samples matrix, got shape {expr.shape}")
    if gene_ids is not None and len(gene_ids) != expr.shape[0]:
        raise DesignError(f"{len(gene_ids)} gene IDs for {expr.shape[0]} expression rows")
    res = limma_batch(expr[None], groups, contrast, config)
    gene = (
        pl.Series("gene", list(gene_ids), dtype=pl.Utf8)
        if gene_ids is not None
        else pl.Series("gene", np.arange(expr.shape[0], dtype=np.int32))
    )
    return pl.DataFrame(
        {
            "gene": gene,
            "logFC": res.log_fc[0],
            "AveExpr": res.ave_expr[0],
            "t": res.t[0],
            "P.Value": res.p_value[0],
            "adj.P.Val": res.adj_p_value[0],
            "B": res.b[0],
        }
    )


def de_table(
    counts: np.ndarray,
    groups: Sequence[str],
    contrast: tuple[str, str],
    config: DEConfig = DEConfig(),
    gene_index: np.ndarray | None = None,
    by_p: bool = False,
) -> pl.DataFrame:
    """One contrast's rows for ``core.de_results`` from a genes x samples count matrix, in gene
    order, or by increasing p-value (NaN last) with ``by_p`` (the order BH sorted them in)."""
    counts = np.asarray(counts)
    if counts.ndim != 2:
        raise DesignError(f"expected a genes x samples count matrix, got shape {counts.shape}")
    if gene_index is None:
        gene_index = np.arange(counts.shape[0])
    if len(gene_index) != counts.shape[0]:
        raise DesignError(f"{len(gene_index)} gene indices for {counts.shape[0]} count rows")
    Y, X, c = _checked_batch(counts[None], groups, contrast, config)
    with _blas_controller().limit(limits=1, user_api="blas"):
        res = _limma_dataset(Y[0], X, c, config, by_p)
    gene_index = np.asarray(gene_index, dtype=np.int32)
    return pl.DataFrame(
        [
            pl.Series("gene_index", gene_index[res.order] if by_p else gene_index),
            pl.Series("log_fc", res.log_fc),
            pl.Series("ave_expr", res.ave_expr),
            pl.Series("t", res.t),
            pl.Series("p_value", res.p_value),
            pl.Series("adj_p_value", res.adj_p_value),
            pl.Series("b", res.b),
        ]
    )
