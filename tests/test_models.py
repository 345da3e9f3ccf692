"""degae_tools.models: the config and the four autoencoder graphs."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from degae_tools.errors import ModelError
from degae_tools.models import AutoencoderConfig, build_autoencoder


def test_widths_halve_per_layer_down_to_one():
    assert AutoencoderConfig(neurons=2000, layers=4).widths == (2000, 1000, 500, 250)
    assert AutoencoderConfig(neurons=10, layers=5).widths == (10, 5, 2, 1, 1)
    assert AutoencoderConfig(neurons=100, layers=3).latent_dim == 25


def test_defaults_are_the_study_except_the_output():
    config = AutoencoderConfig()
    assert (config.neurons, config.layers, config.batch_size, config.epochs) == (2000, 1, 128, 50)
    assert config.output_activation == "linear" and not config.study_mode
    assert AutoencoderConfig.study().study_mode
    assert AutoencoderConfig.study().variance_threshold == 1.0


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
