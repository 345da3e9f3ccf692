"""Transitional: the trainer now lives in `degae_tools.steps.train` (the step, which takes a
`Warehouse`) and `degae_tools.models` (network, training plan, model folder). This module keeps
the old entry points for the modules not yet moved: `load_bundle` and `ModelBundle` (now in
`degae_tools.models.bundle`), and `train(db_path, config, **options)`, which opens the warehouse
once and runs the step. New code imports from those modules instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from degae_tools.models.bundle import ModelBundle, load_bundle
from degae_tools.models.config import AutoencoderConfig
from degae_tools.steps import train as step
from degae_tools.steps.train import TrainResult
from warehouse import Warehouse

__all__ = ["ModelBundle", "TrainResult", "load_bundle", "train"]


def train(db_path: Path, config: AutoencoderConfig, **options: Any) -> TrainResult:
    """The train step on the warehouse file `db_path` (options as `steps.train.train` takes)."""
    with Warehouse.open(db_path, write=True) as wh:
        return step.train(wh, config, **options)
