"""Integrated gradients on tiny Keras models, and the attribution tables of a tiny warehouse."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from degae_tools.cli import main
from degae_tools.errors import ModelError
from degae_tools.models import AutoencoderConfig, build_autoencoder
from degae_tools.models.go_config import RULES, AttributeConfig, PredictConfig
from degae_tools.models.go_head import build_head
from degae_tools.models.integrated_gradients import (
    integrated_gradients,
    logit_function,
    logits,
    path_points,
    top_k,
)
from degae_tools.preprocess import Preprocessor
from degae_tools.steps import attribute as attribute_step
from tests.test_predict import copy_compendium, on_warehouse, query

N_GENES = 40


def attribute(db, model_dir, config: AttributeConfig = AttributeConfig()):
    """The attribute step on the warehouse file `db`."""
    return on_warehouse(db, attribute_step.run, model_dir, config)


def export_gmt(db, model_id: str, path, top: int = 50) -> int:
    return on_warehouse(db, attribute_step.export_gmt, model_id, path, top, write=False)


@pytest.fixture()
def compendium(tmp_path):
    return copy_compendium(tmp_path)


@pytest.fixture(scope="module")
def preprocessor() -> Preprocessor:
    rng = np.random.default_rng(1)
    x = rng.normal(loc=0.5, scale=2.0, size=(50, N_GENES))
    x[:, ::5] = 0.0  # constant genes: dropped by the variance threshold
    return Preprocessor(variance_threshold=0.0).fit([x])


def dense_model(n_in: int, n_out: int, activation: str | None, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inp = keras.Input((n_in,))
    return keras.Model(inp, keras.layers.Dense(n_out, activation=activation)(inp))


@pytest.fixture(scope="module")
def smooth_model(preprocessor):
    encoder = dense_model(preprocessor.n_features, 6, "tanh", seed=2)
    head = dense_model(6, 3, None, seed=3)
    return logit_function(preprocessor, encoder, head)


@pytest.fixture(scope="module")
def inputs() -> np.ndarray:
    return np.random.default_rng(4).normal(scale=2.0, size=(4, N_GENES)).astype(np.float32)


def test_every_rule_has_weights_summing_to_one_on_the_unit_interval():
    for rule in ("gauss-legendre", "riemann-left", "riemann-right", "riemann-middle"):
        alphas, weights = path_points(7, rule)
        assert len(alphas) == 7
        assert weights.sum() == pytest.approx(1.0)
        assert alphas.min() >= 0.0 and alphas.max() <= 1.0
    alphas, weights = path_points(7, "riemann-trapezoid")
    assert len(alphas) == 8 and weights.sum() == pytest.approx(1.0)


def test_gauss_legendre_at_50_steps_is_complete(smooth_model, inputs):
    rows, terms = np.array([0, 1, 2, 3, 0]), np.array([0, 1, 2, 0, 2])
    attr = integrated_gradients(smooth_model, inputs, rows, terms, steps=50)
    f_x = logits(smooth_model, inputs)[rows, terms]
    f_0 = logits(smooth_model, np.zeros((1, N_GENES), np.float32))[0, terms]
    gap = attr.sum(axis=1) - (f_x - f_0)
    assert np.all(np.abs(gap) <= 1e-3 * np.abs(f_x - f_0) + 1e-5)


def test_gauss_legendre_beats_a_left_riemann_sum_at_the_same_steps(smooth_model, inputs):
    rows, terms = np.arange(4), np.array([0, 1, 2, 0])
    delta = (
        logits(smooth_model, inputs)[rows, terms]
        - logits(smooth_model, np.zeros((1, N_GENES), np.float32))[0, terms]
    )
    gaps = {
        rule: np.abs(
            integrated_gradients(smooth_model, inputs, rows, terms, steps=8, rule=rule).sum(1)
            - delta
        ).max()
        for rule in ("gauss-legendre", "riemann-left")
    }
    assert gaps["gauss-legendre"] < gaps["riemann-left"] / 10


def test_linear_model_attribution_is_input_times_weight():
    # F(x) = x . w + b: IG is exactly (x - x0) * w for any rule (Sundararajan et al. 2017, 2.1).
    identity = Preprocessor().fit([np.random.default_rng(0).normal(size=(10, 5))])
    identity.mean[:] = 0.0
    identity.scale[:] = 1.0
    encoder = dense_model(5, 5, None, seed=0)
    encoder.layers[-1].set_weights([np.eye(5, dtype=np.float32), np.zeros(5, np.float32)])
    head = dense_model(5, 2, None, seed=1)
    f = logit_function(identity, encoder, head)
    x = np.array([[1.0, -2.0, 0.5, 3.0, 0.0]], np.float32)
    w = head.layers[-1].get_weights()[0]
    for rule in ("riemann-left", "gauss-legendre"):
        attr = integrated_gradients(f, x, np.array([0, 0]), np.array([0, 1]), steps=3, rule=rule)
        np.testing.assert_allclose(attr, (x * w.T), rtol=1e-5, atol=1e-6)


def test_batch_size_does_not_change_attributions(smooth_model, inputs):
    rows, terms = np.array([0, 1, 2, 3, 1, 2]), np.array([0, 1, 2, 0, 0, 1])
    reference = integrated_gradients(smooth_model, inputs, rows, terms, steps=20, batch=1000)
    for batch in (1, 7, 20, 45):
        attr = integrated_gradients(smooth_model, inputs, rows, terms, steps=20, batch=batch)
        np.testing.assert_allclose(attr, reference, rtol=1e-4, atol=1e-6)


def test_baseline_is_no_change_mapped_through_the_scaler(preprocessor, smooth_model, inputs):
    encoder = dense_model(preprocessor.n_features, 6, "tanh", seed=2)
    head = dense_model(6, 3, None, seed=3)
    scaled_zero = preprocessor.transform(np.zeros((1, N_GENES), np.float32))
    assert np.abs(scaled_zero).max() > 0.1  # "no change" is not the scaler's zero
    f_0 = logits(smooth_model, np.zeros((1, N_GENES), np.float32))[0]
    np.testing.assert_allclose(f_0, np.asarray(head(encoder(scaled_zero)))[0], rtol=1e-5)
    attr = integrated_gradients(smooth_model, inputs, np.array([0]), np.array([1]), steps=50)
    expected = logits(smooth_model, inputs)[0, 1] - f_0[1]
    assert attr.sum() == pytest.approx(expected, rel=1e-3, abs=1e-5)


def test_genes_dropped_by_the_variance_threshold_get_zero_attribution(smooth_model, inputs):
    attr = integrated_gradients(smooth_model, inputs, np.array([0]), np.array([0]), steps=10)
    assert np.all(attr[0, ::5] == 0.0)
    assert np.count_nonzero(attr[0]) > N_GENES // 2


def test_top_k_orders_genes_by_signed_or_absolute_attribution():
    attr = np.array([[0.1, -5.0, 3.0, 2.0]])
    assert top_k(attr, 2).tolist() == [[2, 3]]
    assert top_k(attr, 2, rank_by="abs").tolist() == [[1, 2]]


@pytest.fixture(scope="module")
def relu_model(preprocessor):
    """A 2-layer ReLU encoder and a 1-hidden-layer ReLU head: piecewise linear, many kinks."""
    keras.utils.set_random_seed(5)
    inp = keras.Input((preprocessor.n_features,))
    h = keras.layers.Dense(16, activation="relu", name="encoder_0")(inp)
    encoder = keras.Model(inp, keras.layers.Dense(8, activation="relu", name="code")(h))
    code = keras.Input((8,))
    hidden = keras.layers.Dense(12, activation="relu")(code)
    head = keras.Model(code, keras.layers.Dense(3, name="go_logits")(hidden))
    return logit_function(preprocessor, encoder, head)


def test_exact_rule_sums_to_the_logit_change_and_agrees_with_many_quadrature_steps(
    relu_model, inputs
):
    rows, terms = np.array([0, 1, 2, 3, 0, 1]), np.array([0, 1, 2, 0, 2, 2])
    exact = integrated_gradients(relu_model, inputs, rows, terms, rule="exact")
    delta = (
        logits(relu_model, inputs)[rows, terms]
        - logits(relu_model, np.zeros((1, N_GENES), np.float32))[0, terms]
    )
    np.testing.assert_allclose(exact.sum(axis=1), delta, atol=1e-4)
    fine = integrated_gradients(relu_model, inputs, rows, terms, steps=4000, rule="riemann-middle")
    np.testing.assert_allclose(exact, fine, atol=2e-3 * np.abs(exact).max())
    coarse = integrated_gradients(relu_model, inputs, rows, terms, steps=10)
    assert np.abs(coarse.sum(axis=1) - delta).max() > 10 * np.abs(exact.sum(axis=1) - delta).max()


def test_exact_rule_reads_every_kind_degae_trains_and_the_magnitude_representation():
    rng = np.random.default_rng(7)
    x = rng.normal(scale=1.5, size=(30, N_GENES)).astype(np.float32)
    for kind in ("dense", "sparse", "denoising", "variational"):
        prep = Preprocessor(magnitude=kind == "variational").fit([x])
        config = AutoencoderConfig(kind=kind, neurons=16, layers=2, dropout=0.2)
        _, encoder = build_autoencoder(prep.n_features, config)
        z = np.asarray(encoder(prep.transform(x)))
        head = build_head(z, 4, PredictConfig(hidden=6))
        f = logit_function(prep, encoder, head)
        rows, terms = np.arange(5), np.array([0, 1, 2, 3, 0])
        attr = integrated_gradients(f, x, rows, terms, rule="exact")
        delta = logits(f, x[:5])[rows, terms] - logits(f, 0 * x[:1])[0, terms]
        np.testing.assert_allclose(attr.sum(axis=1), delta, atol=1e-4, err_msg=kind)


def test_exact_rule_matches_a_head_whose_code_unit_was_dead_in_training():
    """Normalization divides by max(sqrt(variance), epsilon): a unit constant on the training
    codes (variance 0) but alive on a new contrast must scale exactly as in the model."""
    rng = np.random.default_rng(11)
    train_x = rng.uniform(-1.0, 1.0, size=(40, 6)).astype(np.float32)
    prep = Preprocessor().fit([train_x])
    keras.utils.set_random_seed(3)
    inp = keras.Input((6,))
    dense = keras.layers.Dense(4, activation="relu", name="code")
    encoder = keras.Model(inp, dense(inp))
    kernel = rng.normal(size=(6, 4)).astype(np.float32)
    kernel[:, 0] = 0.0
    kernel[0, 0] = 1.0
    dense.set_weights([kernel, np.array([-50.0, 0.0, 0.0, 0.0], np.float32)])
    z_train = np.asarray(encoder(prep.transform(train_x)))
    assert np.all(z_train[:, 0] == 0.0)  # dead on every training row
    head = build_head(z_train, 2, PredictConfig())
    f = logit_function(prep, encoder, head)
    x = train_x[:3].copy()
    x[0, 0] = 40.0  # wakes the unit up
    rows, terms = np.arange(3), np.array([0, 1, 0])
    attr = integrated_gradients(f, x, rows, terms, rule="exact")
    delta = logits(f, x)[rows, terms] - logits(f, 0 * x[:1])[0, terms]
    np.testing.assert_allclose(attr.sum(axis=1), delta, rtol=1e-4, atol=1e-3)


def test_exact_rule_refuses_a_smooth_model_and_names_the_way_out(smooth_model, inputs):
    with pytest.raises(ModelError, match="tanh.*--rule gauss-legendre"):
        integrated_gradients(smooth_model, inputs, np.array([0]), np.array([0]), rule="exact")


def test_the_cli_offers_every_rule_the_library_knows():
    rule = next(p for p in main.commands["attribute"].params if p.name == "rule")
    assert tuple(rule.type.choices) == RULES


def test_unknown_rule_is_refused():
    with pytest.raises(ModelError, match="unknown integration rule"):
        AttributeConfig(rule="simpson")


def test_attribution_tables_are_written_for_every_pair(compendium):
    db, model_dir = compendium
    result = attribute(db, model_dir, AttributeConfig(rule="gauss-legendre", steps=20, top_k=5))
    pairs = query(
        db, "SELECT count(*), count(completeness_gap), min(steps) FROM ml.attribution_pairs"
    )[0]
    assert pairs == (result.n_pairs, result.n_pairs, 20) and result.n_pairs > 0
    genes = query(db, "SELECT count(*), max(rank) FROM ml.gene_attributions")[0]
    assert genes == (5 * result.n_pairs, 5)
    terms = query(
        db, "SELECT count(DISTINCT go_id), min(n_pairs), max(frac_top_k) FROM ml.term_genes"
    )[0]
    assert terms[0] == result.n_terms and terms[1] >= 1 and 0 < terms[2] <= 1


def test_pairs_are_every_predicted_or_enriched_test_term(compendium):
    db, model_dir = compendium
    attribute(db, model_dir, AttributeConfig(steps=10))
    missing = query(
        db,
        "SELECT count(*) FROM ml.go_predictions p LEFT JOIN ml.attribution_pairs a "
        "USING (model_id, contrast_id, go_id) WHERE p.predictor = 'latent_head' "
        "AND (p.label OR p.score >= 0.5) AND a.go_id IS NULL",
    )[0][0]
    assert missing == 0
    whys = {r[0] for r in query(db, "SELECT DISTINCT why FROM ml.attribution_pairs")}
    assert whys <= {"predicted", "enriched", "both"} and "both" in whys


def test_predicted_terms_are_capped_per_contrast(compendium):
    db, model_dir = compendium
    attribute(db, model_dir, AttributeConfig(steps=4, max_predicted=1))
    most = query(
        db,
        "SELECT max(n) FROM (SELECT contrast_id, count(*) AS n FROM ml.attribution_pairs "
        "WHERE why IN ('predicted', 'both') GROUP BY 1)",
    )[0][0]
    assert most == 1


def test_the_default_exact_rule_closes_every_completeness_gap(compendium):
    db, model_dir = compendium
    result = attribute(db, model_dir)
    assert result.completeness_ok == 1.0
    worst, steps = query(
        db, "SELECT max(abs(completeness_gap)), count(steps) FROM ml.attribution_pairs"
    )[0]
    assert worst < 1e-4 and steps == 0  # no quadrature steps behind an exact attribution


def test_gmt_export_lists_top_genes_by_symbol(compendium, tmp_path):
    db, model_dir = compendium
    result = attribute(db, model_dir, AttributeConfig(steps=10))
    n = export_gmt(db, result.model_id, tmp_path / "terms.gmt", top=7)
    lines = (tmp_path / "terms.gmt").read_text().splitlines()
    assert len(lines) == n == result.n_terms
    fields = lines[0].split("\t")
    assert fields[0].startswith("GO:") and len(fields) == 2 + 7
    assert all(g.startswith("Gene") for g in fields[2:])


def test_cli_attributes_and_writes_a_gmt(compendium, tmp_path):
    db, model_dir = compendium
    args = [
        "--json",
        "attribute",
        "--model",
        str(model_dir),
        "--db",
        str(db),
        "--steps",
        "8",
        "--batch",
        "16",
        "--gmt",
        str(tmp_path / "t.gmt"),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert '"pairs"' in result.output and (tmp_path / "t.gmt").exists()


def test_no_pair_to_attribute_says_why_and_exits_2_under_strict(compendium):
    db, model_dir = compendium
    on_warehouse(db, lambda wh: wh.execute("UPDATE core.go_enrichment SET fwer_over = 1.0"))
    args = ["attribute", "--model", str(model_dir), "--db", str(db), "--max-predicted", "0"]
    result = CliRunner().invoke(main, [*args, "--strict"])
    assert result.exit_code == 2, result.output
    assert "nothing done: none of the" in result.output and "lower --threshold" in result.output


@pytest.mark.parametrize("layers", [1, 2, 0], ids=["one-hidden", "two-hidden", "no-hidden"])
def test_exact_rule_reads_the_residual_kind_a_sum_of_two_paths(layers):
    """The residual encoder adds a frozen linear path to a ReLU network; the exact rule walks it
    as one chain (relu(p) - relu(-p) carries the linear path) and stays complete."""
    from degae_tools.models.autoencoder import LinearPath

    rng = np.random.default_rng(5)
    x = rng.normal(scale=1.5, size=(30, N_GENES)).astype(np.float32)
    prep = Preprocessor().fit([x])
    z = prep.transform(x)
    axes = np.linalg.svd(z - z.mean(0), full_matrices=False)[2][:4]
    shape = {"neurons": 16, "layers": max(layers, 1)} if layers else {"neurons": 4, "layers": 1}
    config = AutoencoderConfig(kind="residual", latent=None if not layers else 4, **shape)
    _, encoder = build_autoencoder(prep.n_features, config, LinearPath(axes, z.mean(0)))
    for weight in encoder.trainable_weights:  # a residual that is not zero, as after training
        weight.assign(rng.normal(scale=0.3, size=weight.shape).astype(np.float32))
    code = np.asarray(encoder(z))
    head = build_head(code, 3, PredictConfig(hidden=6))
    f = logit_function(prep, encoder, head)
    rows, terms = np.arange(6), np.array([0, 1, 2, 0, 1, 2])
    attr = integrated_gradients(f, x, rows, terms, rule="exact")
    delta = logits(f, x[:6])[rows, terms] - logits(f, 0 * x[:1])[0, terms]
    np.testing.assert_allclose(attr.sum(axis=1), delta, atol=1e-4)
    fine = integrated_gradients(f, x, rows, terms, steps=2000, rule="riemann-middle")
    np.testing.assert_allclose(attr, fine, atol=5e-3 * np.abs(attr).max())
