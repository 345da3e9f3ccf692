"""The autoencoder's configuration: one frozen dataclass, defaults from the reference study."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from degae_tools.errors import ModelError

KINDS = ("dense", "sparse", "denoising", "variational")
OUTPUT_ACTIVATIONS = ("linear", "sigmoid")
DISTRIBUTE = ("none", "mirrored")
REPRESENTATIONS = ("signed", "magnitude")
# Fields added after models were first trained, with the default that reproduces older models.
LATER_FIELDS = {"representation": "signed"}


def identity_json(config: Any) -> str:
    """A dataclass config as sorted JSON, without LATER_FIELDS that hold their old default."""
    values = dataclasses.asdict(config)
    for name, default in LATER_FIELDS.items():
        if values.get(name) == default:
            values.pop(name)
    return json.dumps(values, sort_keys=True)


@dataclass(frozen=True)
class AutoencoderConfig:
    """Architecture, optimisation and preprocessing of one autoencoder.

    Hidden widths halve per layer from `neurons` (the last encoder layer is the latent code).
    The study: dense, 2,000 neurons, 1 layer, sigmoid output on min-max data (see `study()`),
    Adam 1e-3, batch 128, 50 epochs. degae defaults to a linear output on standardised data.
    `representation` is what the model reads of each gene: the signed log2FC (the study's), or its
    magnitude |log2FC|, which drops the direction but matches how GO enrichment of DE genes sees
    an experiment (an up- and a down-shifted module enrich the same term).
    """

    kind: str = "dense"
    representation: str = "signed"
    neurons: int = 2000
    layers: int = 1
    output_activation: str = "linear"
    learning_rate: float = 1e-3
    batch_size: int = 128
    epochs: int = 50
    variance_threshold: float | None = None
    minmax: bool = False
    l1: float = 1e-5
    noise: float = 0.1
    dropout: float = 0.0
    beta: float = 1.0
    kl_warmup_epochs: int = 10
    seed: int = 69
    early_stopping: bool = False
    patience: int = 10
    mixed_precision: bool = False
    xla: bool = False
    distribute: str = "none"

    def __post_init__(self) -> None:
        checks = [
            (self.kind in KINDS, f"kind must be one of {KINDS}, got {self.kind!r}"),
            (
                self.representation in REPRESENTATIONS,
                f"representation must be one of {REPRESENTATIONS}, got {self.representation!r}",
            ),
            (self.neurons >= 1, f"neurons must be >= 1, got {self.neurons}"),
            (self.layers >= 1, f"layers must be >= 1, got {self.layers}"),
            (
                self.output_activation in OUTPUT_ACTIVATIONS,
                f"output_activation must be one of {OUTPUT_ACTIVATIONS}",
            ),
            (self.learning_rate > 0, "learning_rate must be > 0"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (0 <= self.dropout < 1, "dropout must be in [0, 1)"),
            (self.noise >= 0 and self.l1 >= 0 and self.beta >= 0, "noise, l1, beta must be >= 0"),
            (self.distribute in DISTRIBUTE, f"distribute must be one of {DISTRIBUTE}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ModelError(f"AutoencoderConfig: {message}")

    @classmethod
    def study(cls, **overrides: Any) -> AutoencoderConfig:
        """The reference study's setting: sigmoid output on min-max scaled data, threshold 1."""
        base = {"output_activation": "sigmoid", "minmax": True, "variance_threshold": 1.0}
        return cls(**{**base, **overrides})

    @property
    def widths(self) -> tuple[int, ...]:
        """Encoder widths, halving per layer, at least 1; the last is the latent size."""
        return tuple(max(1, self.neurons // 2**i) for i in range(self.layers))

    @property
    def latent_dim(self) -> int:
        """Size of the code."""
        return self.widths[-1]

    @property
    def study_mode(self) -> bool:
        """Whether this reproduces the study's output setting (sigmoid on min-max data)."""
        return self.output_activation == "sigmoid" and self.minmax

    def to_json(self) -> str:
        """The config as JSON (saved beside the model and in ml.models)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    def identity_json(self) -> str:
        """The JSON that model ids hash: `to_json` without fields added later while they hold
        their default, so a model trained before they existed keeps its id and checkpoint."""
        return identity_json(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AutoencoderConfig:
        """Rebuild from `to_json`'s fields; unknown fields are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ModelError(f"AutoencoderConfig: unknown fields {unknown}")
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> AutoencoderConfig:
        """Rebuild from `to_json`."""
        return cls.from_dict(json.loads(text))
