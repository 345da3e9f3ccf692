"""The autoencoder's settings, split by what they decide (as scvi-tools keeps the network's knobs
in its module and the optimisation's in its training plan):

* `Architecture`: the network (kind, widths, code size, regularisers, output).
* `Training`: the optimisation that fits it (epochs, batch, learning rate, stopping, seed).
* `DataConfig`: what it reads (collection, value kind, representation, gene selection, scaling).
* `Runtime`: how this machine runs it (precision, XLA, devices).

`AutoencoderConfig` bundles the first three, and a model id hashes exactly it: the runtime is
recorded in `ml.models.metrics` instead. `SearchConfig` is a grid of architectures around one
AutoencoderConfig. Field names are unique across the four parts, so a config is
saved as one flat JSON object, and older flat `config.json` files still load.
Defaults are the reference study's (2,000 units, 1 layer, Adam 1e-3, batch 128, 50 epochs) but
for the output: linear on standardised data (the study: sigmoid, see `AutoencoderConfig.study`).
The `train` command's defaults are the product's (`AutoencoderConfig.product`, PRODUCT_DEFAULTS).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from degae_tools.errors import ModelError

KINDS = ("dense", "sparse", "denoising", "variational", "residual")
OUTPUT_ACTIVATIONS = ("linear", "sigmoid")
CODE_ACTIVATIONS = ("relu", "linear")
DISTRIBUTE = ("none", "mirrored")
REPRESENTATIONS = ("signed", "magnitude")
VALUES = ("log2fc", "t", "z")
BASELINES = ("pca", "ica", "nmf")
COMPENDIUM = "compendium"
# Fields added after models were first trained, with the value that reproduces older models: a
# model id leaves them out while they hold it, so older models keep their ids.
LATER_FIELDS = {
    "representation": "signed",
    "latent": None,
    "code_activation": "relu",
    "batch_norm": False,
    "weight_decay": 0.0,
    "collection": COMPENDIUM,
    "value": "log2fc",
    "hidden_dropout": 0.0,
    "best_weights": False,
    "clip": None,
}
# The clip each value kind gets unless --clip says otherwise (0: none). L1000's moderated z reach
# ±200 on a few genes of a few signatures; unclipped, those cells dominate the standardised scale.
DEFAULT_CLIP = {"z": 10.0, "t": 0.0, "log2fc": 0.0}
# Runtime settings that older config.json files stored with the model (ignored when read back).
FORMER_CONFIG_FIELDS = ("mixed_precision", "xla", "distribute")


def _require(checks: list[tuple[bool, str]], owner: str) -> None:
    for ok, message in checks:
        if not ok:
            raise ModelError(f"{owner}: {message}")


@dataclass(frozen=True)
class Architecture:
    """The network. Hidden widths halve per layer from `neurons`; without `latent` the last of
    them is the code (the study's), with it a code of `latent` units follows them."""

    kind: str = field(
        default="dense",
        metadata={
            "choices": KINDS,
            "help": "dense (the study's), sparse (L1 on the code), denoising (input noise and "
            "dropout), variational (beta-VAE) or residual (a frozen PCA path, fitted on the "
            "training split, plus a non-linear residual that starts at zero: training starts "
            "at PCA's reconstruction).",
        },
    )
    neurons: int = field(default=2000, metadata={"help": "Width of the first encoder layer."})
    layers: int = field(
        default=1, metadata={"help": "Encoder layers, each half the width of the one before."}
    )
    latent: int | None = field(
        default=None,
        metadata={
            "help": "Size of the code, after --layers hidden layers. Default: the last halved "
            "layer is the code (the study's)."
        },
    )
    output_activation: str = field(
        default="linear",
        metadata={
            "choices": OUTPUT_ACTIVATIONS,
            "help": "The study used sigmoid (with --minmax); linear fits standardised data.",
        },
    )
    code_activation: str = field(
        default="relu",
        metadata={
            "choices": CODE_ACTIVATIONS,
            "help": "The code's activation (not variational): relu (the study's) or linear, "
            "whose units cannot die.",
        },
    )
    l1: float = field(default=1e-5, metadata={"help": "sparse: L1 on the code."})
    noise: float = field(
        default=0.1, metadata={"help": "denoising and residual: Gaussian input noise (sd)."}
    )
    dropout: float = field(
        default=0.0, metadata={"help": "denoising and residual: input dropout rate."}
    )
    hidden_dropout: float = field(
        default=0.0, metadata={"help": "Dropout after each hidden layer (any kind)."}
    )
    beta: float = field(default=1.0, metadata={"help": "variational: weight of the KL term."})
    batch_norm: bool = field(
        default=False, metadata={"help": "Batch normalisation after each hidden layer."}
    )

    def __post_init__(self) -> None:
        _require(
            [
                (self.kind in KINDS, f"kind must be one of {KINDS}, got {self.kind!r}"),
                (self.neurons >= 1, f"neurons must be >= 1, got {self.neurons}"),
                (self.layers >= 1, f"layers must be >= 1, got {self.layers}"),
                (self.latent is None or self.latent >= 1, f"latent must be >= 1: {self.latent}"),
                (
                    self.output_activation in OUTPUT_ACTIVATIONS,
                    f"output_activation must be one of {OUTPUT_ACTIVATIONS}",
                ),
                (
                    self.code_activation in CODE_ACTIVATIONS,
                    f"code_activation must be one of {CODE_ACTIVATIONS}",
                ),
                (0 <= self.dropout < 1, "dropout must be in [0, 1)"),
                (0 <= self.hidden_dropout < 1, "hidden_dropout must be in [0, 1)"),
                (min(self.noise, self.l1, self.beta) >= 0, "noise, l1, beta must be >= 0"),
            ],
            "AutoencoderConfig",
        )

    @property
    def widths(self) -> tuple[int, ...]:
        """Encoder widths, at least 1 each; the last is the code."""
        halving = tuple(max(1, self.neurons // 2**i) for i in range(self.layers))
        return halving if self.latent is None else (*halving, self.latent)


@dataclass(frozen=True)
class Training:
    """The optimisation: Adam (AdamW with weight decay) on MSE, ReduceLROnPlateau, optional early
    stopping on the validation loss, and the seed of every random draw."""

    epochs: int = 50
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = field(
        default=0.0, metadata={"help": "AdamW's decoupled weight decay (0: plain Adam)."}
    )
    early_stopping: bool = field(
        default=False, metadata={"help": "Stop when val_loss stops improving."}
    )
    patience: int = field(default=10, metadata={"help": "Epochs without improvement to stop."})
    best_weights: bool = field(
        default=False,
        metadata={
            "help": "End at the weights of the epoch with the lowest val_loss, the initial "
            "weights included (a residual model then never ends worse than PCA on the "
            "validation rows)."
        },
    )
    kl_warmup_epochs: int = field(
        default=10, metadata={"help": "variational: epochs for the KL weight to reach beta."}
    )
    seed: int = 69

    def __post_init__(self) -> None:
        _require(
            [
                (self.learning_rate > 0, "learning_rate must be > 0"),
                (self.batch_size >= 1, "batch_size must be >= 1"),
                (self.epochs >= 1, "epochs must be >= 1"),
                (self.weight_decay >= 0, "weight_decay must be >= 0"),
            ],
            "AutoencoderConfig",
        )


@dataclass(frozen=True)
class DataConfig:
    """What the model reads of each contrast, and how it is scaled (fit on training rows only).

    `representation` is the signed value (the study's) or its magnitude, which drops the direction
    but matches how GO enrichment of DE genes sees an experiment (an up- and a down-shifted module
    enrich the same term)."""

    collection: str = field(
        default=COMPENDIUM,
        metadata={"help": "The collection of signatures to train on (see core.collections)."},
    )
    value: str = field(
        default="log2fc",
        metadata={
            "choices": VALUES,
            "help": "The per-gene value read: log2FC, limma's moderated t, or the z-score of "
            "imported signatures. train's default: the collection's own (core.collections.score; "
            "log2fc for the compendium).",
        },
    )
    representation: str = field(
        default="signed",
        metadata={
            "choices": REPRESENTATIONS,
            "help": "The value as it is (the study's), or its magnitude, which GO enrichment of "
            "DE genes sees the same way (see the design notes).",
        },
    )
    variance_threshold: float | None = field(
        default=None,
        metadata={
            "help": "Keep genes whose training variance exceeds this (study: 1). Default: all."
        },
    )
    minmax: bool = field(
        default=False, metadata={"help": "Scale standardised genes to [0, 1] (study)."}
    )
    clip: float | None = field(
        default=None,
        metadata={
            "help": "Clip values to [-CLIP, CLIP] before the representation and standardising, "
            "when training and whenever the model reads values. Default: 10 for z (imported "
            "moderated z-scores reach ±200 on a few genes), none for log2fc and t. 0: no clip."
        },
    )

    def __post_init__(self) -> None:
        _require(
            [
                (
                    self.representation in REPRESENTATIONS,
                    f"representation must be one of {REPRESENTATIONS}, got {self.representation!r}",
                ),
                (self.value in VALUES, f"value must be one of {VALUES}, got {self.value!r}"),
                (bool(self.collection), "collection must be named"),
                (self.clip is None or self.clip >= 0, f"clip must be >= 0, got {self.clip}"),
            ],
            "AutoencoderConfig",
        )

    @property
    def clip_limit(self) -> float:
        """The clip applied: `clip`, or the value kind's default when unset (0: none)."""
        return DEFAULT_CLIP[self.value] if self.clip is None else float(self.clip)


@dataclass(frozen=True)
class Runtime:
    """How this machine runs a fit; recorded with the model, never part of its id."""

    mixed_precision: bool = field(
        default=False,
        metadata={"help": "bfloat16 compute on CPU, float16 on GPU; float32 output and loss."},
    )
    xla: bool = field(
        default=False,
        metadata={"help": "Compile the training step with XLA (then not repeatable bit for bit)."},
    )
    distribute: str = field(
        default="none",
        metadata={
            "choices": DISTRIBUTE,
            "help": "mirrored: one replica per GPU (or per --cpu-devices), gradients averaged.",
        },
    )
    cpu_devices: int = field(
        default=0,
        metadata={
            "help": "Split the CPU into this many logical devices (mirrored training without a "
            "GPU). 0: as TensorFlow finds it."
        },
    )

    def __post_init__(self) -> None:
        _require(
            [
                (self.distribute in DISTRIBUTE, f"distribute must be one of {DISTRIBUTE}"),
                (self.cpu_devices >= 0, "cpu_devices must be >= 0"),
            ],
            "Runtime",
        )


# The `train` command's defaults, and `AutoencoderConfig.product()`: the residual kind, as
# measured on the real L1000 signatures (held-out R² at latent 8: 1.15x PCA's through the train
# step, bench/l1000_sequence.py; 3-fold CV on the training split at latent 4-128,
# bench/l1000_explore.py). The dataclass defaults stay the reference study's.
PRODUCT_DEFAULTS: dict[str, Any] = {
    "kind": "residual",
    "neurons": 512,
    "noise": 0.5,
    "hidden_dropout": 0.2,
    "best_weights": True,
}

PARTS = {"architecture": Architecture, "training": Training, "data": DataConfig}
PART_OF = {f.name: part for part, cls in PARTS.items() for f in dataclasses.fields(cls)}
RUNTIME_FIELDS = frozenset(f.name for f in dataclasses.fields(Runtime))


@dataclass(frozen=True, init=False)
class AutoencoderConfig:
    """Everything that decides a model's weights: its architecture, training and data.

    Built from the parts, or from their fields by name, or both (names override the parts):
    `AutoencoderConfig(neurons=64, epochs=5)`, `AutoencoderConfig(architecture=a, seed=1)`.
    """

    architecture: Architecture
    training: Training
    data: DataConfig

    def __init__(
        self,
        architecture: Architecture | None = None,
        training: Training | None = None,
        data: DataConfig | None = None,
        **fields: Any,
    ) -> None:
        runtime = sorted(set(fields) & RUNTIME_FIELDS)
        if runtime:
            raise ModelError(f"AutoencoderConfig: {runtime} are Runtime settings, not the model's")
        unknown = sorted(set(fields) - set(PART_OF))
        if unknown:
            raise ModelError(f"AutoencoderConfig: unknown fields {unknown}")
        given = {"architecture": architecture, "training": training, "data": data}
        for part, cls in PARTS.items():
            mine = {k: v for k, v in fields.items() if PART_OF[k] == part}
            base = given[part] if given[part] is not None else cls()
            object.__setattr__(self, part, dataclasses.replace(base, **mine) if mine else base)

    @classmethod
    def study(cls, **overrides: Any) -> AutoencoderConfig:
        """The reference study's setting: sigmoid output on min-max scaled data, threshold 1."""
        base = {"output_activation": "sigmoid", "minmax": True, "variance_threshold": 1.0}
        return cls(**{**base, **overrides})

    @classmethod
    def product(cls, **overrides: Any) -> AutoencoderConfig:
        """The `train` command's defaults (PRODUCT_DEFAULTS): the residual kind, 512 hidden
        units, input noise 0.5, hidden dropout 0.2, ending at the best validation weights."""
        return cls(**{**PRODUCT_DEFAULTS, **overrides})

    @property
    def kind(self) -> str:
        """The autoencoder's kind (dense, sparse, denoising, variational)."""
        return self.architecture.kind

    @property
    def widths(self) -> tuple[int, ...]:
        """Encoder widths; the last is the code."""
        return self.architecture.widths

    @property
    def latent_dim(self) -> int:
        """Size of the code."""
        return self.widths[-1]

    @property
    def study_mode(self) -> bool:
        """Whether this reproduces the study's output setting (sigmoid on min-max data)."""
        return self.architecture.output_activation == "sigmoid" and self.data.minmax

    def flat(self) -> dict[str, Any]:
        """Every field of the three parts by name."""
        return {k: v for part in PARTS for k, v in dataclasses.asdict(getattr(self, part)).items()}

    def to_json(self) -> str:
        """The config as flat JSON (saved beside the model and in ml.models)."""
        return json.dumps(self.flat(), sort_keys=True)

    def identity_json(self) -> str:
        """The JSON that model ids hash: `to_json` without LATER_FIELDS that hold the value of
        older models, so a model trained before they existed keeps its id and checkpoint."""
        return identity_json(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AutoencoderConfig:
        """Rebuild from `to_json`'s fields (older files' runtime fields are ignored); unknown
        fields are an error."""
        return cls(**{k: v for k, v in values.items() if k not in FORMER_CONFIG_FIELDS})

    @classmethod
    def from_json(cls, text: str) -> AutoencoderConfig:
        """Rebuild from `to_json`."""
        return cls.from_dict(json.loads(text))


def identity_json(config: Any) -> str:
    """A config as sorted JSON without LATER_FIELDS that hold their old value: an
    AutoencoderConfig's flat fields, or any other dataclass's."""
    values = config.flat() if isinstance(config, AutoencoderConfig) else dataclasses.asdict(config)
    for name, default in LATER_FIELDS.items():
        if name in values and values[name] == default:
            values.pop(name)
    return json.dumps(values, sort_keys=True)


def take(cls: type, values: dict[str, Any]) -> Any:
    """`cls` built from the fields of `values` that belong to it, removed from `values` (for
    commands that receive every option as one keyword dict)."""
    names = [f.name for f in dataclasses.fields(cls) if f.name in values]
    return cls(**{name: values.pop(name) for name in names})


STUDY_NEURONS = (1, 10, 100, 200, 400, 600, 800, 1000, 2000)
STUDY_LAYERS = tuple(range(1, 11))


@dataclass(frozen=True)
class SearchConfig:
    """The search space and how each trial is trained (defaults: the study's grid, 4 folds).

    `base` is every trial's autoencoder but for its neurons and layers; its seed also draws the
    trials and the folds."""

    neurons: tuple[int, ...] = field(
        default=STUDY_NEURONS, metadata={"help": "First-layer widths to draw from."}
    )
    layers: tuple[int, ...] = field(
        default=STUDY_LAYERS, metadata={"help": "Layer counts to draw from: a range a-b or a list."}
    )
    n_trials: int = field(default=20, metadata={"help": "(neurons, layers) pairs to try."})
    folds: int = field(default=4, metadata={"help": "Folds by group (series or signature)."})
    split_name: str | None = None
    base: AutoencoderConfig = AutoencoderConfig()

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ModelError(f"SearchConfig: folds must be >= 2, got {self.folds}")
        if self.n_trials < 1 or not self.neurons or not self.layers:
            raise ModelError("SearchConfig: need n_trials >= 1 and non-empty neurons and layers")

    @property
    def seed(self) -> int:
        """The seed of the draw, the folds and every trial."""
        return self.base.training.seed

    def identity_json(self) -> str:
        """The settings as JSON (their hash, with the warehouse's, names the search)."""
        grid = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "base"}
        return json.dumps({**grid, "base": json.loads(self.base.identity_json())}, sort_keys=True)

    def trial_config(self, neurons: int, layers: int) -> AutoencoderConfig:
        """The autoencoder one trial trains."""
        base = self.base
        return AutoencoderConfig(
            base.architecture, base.training, base.data, neurons=neurons, layers=layers
        )
