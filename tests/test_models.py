"""degae_tools.models: the configs (architecture, training, data, runtime) and the four
autoencoder graphs."""

from __future__ import annotations

import dataclasses
import json

import keras
import numpy as np
import pytest

from degae_tools.errors import ModelError
from degae_tools.models import (
    Architecture,
    AutoencoderConfig,
    DataConfig,
    Runtime,
    Training,
    build_autoencoder,
)
from degae_tools.models.config import take
from degae_tools.steps.train import model_id_for


def test_widths_halve_per_layer_down_to_one():
    assert AutoencoderConfig(neurons=2000, layers=4).widths == (2000, 1000, 500, 250)
    assert AutoencoderConfig(neurons=10, layers=5).widths == (10, 5, 2, 1, 1)
    assert AutoencoderConfig(neurons=100, layers=3).latent_dim == 25


def test_defaults_are_the_study_except_the_output():
    config = AutoencoderConfig()
    net, fit = config.architecture, config.training
    assert (net.neurons, net.layers, fit.batch_size, fit.epochs) == (2000, 1, 128, 50)
    assert net.output_activation == "linear" and not config.study_mode
    assert AutoencoderConfig.study().study_mode
    assert AutoencoderConfig.study().data.variance_threshold == 1.0


def test_config_round_trips_through_json():
    config = AutoencoderConfig(kind="variational", neurons=64, layers=3, beta=0.5)
    assert AutoencoderConfig.from_json(config.to_json()) == config


def test_bad_config_is_a_clear_error():
    with pytest.raises(ModelError, match="kind must be one of"):
        AutoencoderConfig(kind="convolutional")
    with pytest.raises(ModelError, match="unknown fields"):
        AutoencoderConfig.from_dict({"neurons": 3, "width": 4})


@pytest.mark.parametrize("kind", ["dense", "sparse", "denoising", "variational"])
def test_each_kind_maps_genes_to_a_code_and_back(kind):
    config = AutoencoderConfig(kind=kind, neurons=16, layers=2)
    autoencoder, encoder = build_autoencoder(30, config)
    x = np.random.default_rng(0).normal(size=(5, 30)).astype("float32")
    assert encoder(x).shape == (5, 8)
    assert autoencoder(x).shape == (5, 30)


def test_variational_code_is_the_mean_and_training_samples():
    autoencoder, encoder = build_autoencoder(20, AutoencoderConfig(kind="variational", neurons=8))
    x = np.ones((4, 20), dtype="float32")
    np.testing.assert_array_equal(encoder(x), encoder(x))
    assert not np.allclose(autoencoder(x, training=True), autoencoder(x, training=False))


def test_sigmoid_output_stays_in_unit_interval():
    autoencoder, _ = build_autoencoder(
        10, AutoencoderConfig(neurons=4, output_activation="sigmoid")
    )
    y = np.asarray(autoencoder(np.full((3, 10), 50.0, dtype="float32")))
    assert y.min() >= 0.0 and y.max() <= 1.0


def test_mixed_precision_keeps_the_output_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        autoencoder, encoder = build_autoencoder(12, AutoencoderConfig(neurons=8))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert encoder.output.dtype == "float16"
    assert autoencoder.output.dtype == "float32"


def test_a_direct_latent_size_follows_the_halving_hidden_layers():
    assert AutoencoderConfig(neurons=512, layers=1, latent=8).widths == (512, 8)
    assert AutoencoderConfig(neurons=512, layers=2, latent=8).widths == (512, 256, 8)
    autoencoder, encoder = build_autoencoder(30, AutoencoderConfig(neurons=16, latent=3))
    assert encoder(np.zeros((2, 30), "float32")).shape == (2, 3)
    assert [layer.name for layer in autoencoder.layers if "coder_" in layer.name] == [
        "encoder_0",
        "decoder_0",
    ]


def test_settings_split_into_architecture_training_data_and_runtime():
    config = AutoencoderConfig(neurons=64, epochs=5, value="t", collection="l1000")
    assert config.architecture == Architecture(neurons=64)
    assert config.training == Training(epochs=5)
    assert config.data == DataConfig(value="t", collection="l1000")
    parts = [Architecture, Training, DataConfig, Runtime]
    names = [f.name for part in parts for f in dataclasses.fields(part)]
    assert len(names) == len(set(names)), "field names must be unique: configs are saved flat"
    with pytest.raises(ModelError, match="Runtime settings"):
        AutoencoderConfig(xla=True)
    fields = {"neurons": 8, "xla": True, "cpu_devices": 2}
    assert take(Runtime, fields) == Runtime(xla=True, cpu_devices=2) and fields == {"neurons": 8}


def test_the_model_id_hashes_what_changes_the_weights_and_not_the_runtime():
    ids = {
        model_id_for(AutoencoderConfig(**change), "degae", "h")
        for change in ({}, {"epochs": 3}, {"latent": 4}, {"value": "t"}, {"batch_norm": True})
    }
    assert len(ids) == 5
    # the runtime is no field of the config, so it cannot reach the id; a new field at the
    # value older models had leaves their ids as they were
    assert "xla" not in AutoencoderConfig().identity_json()
    for name in ("latent", "batch_norm", "weight_decay", "collection", "value"):
        assert name not in AutoencoderConfig().identity_json()


def test_a_flat_config_of_an_older_version_still_loads():
    """config.json before the split held the runtime beside the rest, all flat."""
    old = json.loads(AutoencoderConfig(neurons=32, layers=2).to_json())
    for name in ("latent", "batch_norm", "weight_decay", "collection", "value"):
        old.pop(name)
    old.update({"mixed_precision": False, "xla": False, "distribute": "none"})
    assert AutoencoderConfig.from_dict(old) == AutoencoderConfig(neurons=32, layers=2)


def test_batch_norm_normalises_each_hidden_layer():
    config = AutoencoderConfig(neurons=16, layers=2, batch_norm=True)
    autoencoder, _ = build_autoencoder(30, config)
    names = [layer.name for layer in autoencoder.layers]
    assert {"encoder_0_norm", "decoder_0_norm"} <= set(names)
    assert autoencoder(np.ones((4, 30), "float32")).shape == (4, 30)


def test_the_residual_kind_starts_at_pca_and_keeps_its_linear_path_frozen():
    from degae_tools.models.autoencoder import LinearPath

    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 12)).astype("float32") @ rng.normal(size=(12, 12)).astype("float32")
    mean = x.mean(axis=0)
    axes = np.linalg.svd(x - mean, full_matrices=False)[2][:3]
    config = AutoencoderConfig(kind="residual", neurons=16, latent=3, noise=0.5, hidden_dropout=0.2)
    autoencoder, encoder = build_autoencoder(12, config, LinearPath(axes, mean))
    np.testing.assert_allclose(encoder(x), (x - mean) @ axes.T, atol=1e-4)
    np.testing.assert_allclose(autoencoder(x), (x - mean) @ axes.T @ axes + mean, atol=1e-4)
    frozen = {w.path.split("/")[0] for w in autoencoder.non_trainable_weights}
    assert {"pca_encoder", "pca_decoder"} <= frozen
    assert not {"pca_encoder", "pca_decoder"} & {
        w.path.split("/")[0] for w in autoencoder.trainable_weights
    }
    # noise and dropout act while training only
    assert not np.allclose(autoencoder(x, training=True), autoencoder(x, training=False))
