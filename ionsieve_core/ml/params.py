"""Hyperparameters of one training run, named in one dataclass (keras-io style)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

ARCHS = ("compact", "resnet50", "densenet121", "vgg16", "inceptionresnetv2")
TASKS = ("binary", "multiclass", "multilabel")

# keras.applications refuse smaller inputs; InceptionResNetV2 needs 75 px.
MIN_INPUT = {"compact": 16, "inceptionresnetv2": 75}
DEFAULT_INPUT = {"compact": 56, "inceptionresnetv2": 75}
DEFAULT_EPOCHS = {"compact": 15}


@dataclass
class TrainParams:
    arch: str = "compact"
    input_size: int | None = None  # None -> 56 for compact, 75 for InceptionResNetV2, 32 for the others
    epochs: int | None = None  # None -> 15 for compact, 10 for backbones
    batch_size: int = 64
    learning_rate: float = 0.01  # SGD + momentum, as the METASPACE reference model
    momentum: float = 0.9
    folds: int = 5
    ensemble: int = 1  # k models (different seeds) averaged, in each fold and in the final model
    context: bool = False  # the dataset's TIC / mean image as an extra input channel
    augment: bool = True  # flips + 90 degree rotations (the 8 dihedral transforms)
    class_weight: bool = True  # balanced class weights; multilabel: oversample rare classes
    tta: bool = False  # average the 8 dihedral transforms at predict time
    seed: int = 0
    weights_path: str | None = None  # local backbone weights file; nothing is ever downloaded
    calibrate: bool = True  # binary: isotonic / Platt on out-of-fold probabilities
    label_smoothing: float = 0.0  # single-label tasks: keeps the net off 0/1 over-confidence
    # "default": start binary compact models from the shipped off-sample model (fine-tuning),
    # so a few hundred labels improve on it instead of starting from random weights.
    init: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"unknown arch {self.arch!r}; one of {', '.join(ARCHS)}")
        if self.input_size is None:
            self.input_size = DEFAULT_INPUT.get(self.arch, 32)
        # Clamp instead of failing: a too-small size is a typo, not a reason to lose a run.
        self.input_size = max(int(self.input_size), MIN_INPUT.get(self.arch, 32))
        if self.epochs is None:
            self.epochs = DEFAULT_EPOCHS.get(self.arch, 10)
        self.epochs = max(1, int(self.epochs))
        self.folds = max(2, int(self.folds))
        self.ensemble = max(1, int(self.ensemble))
        self.batch_size = max(1, int(self.batch_size))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainParams:
        # Unknown keys (from a newer writer) are dropped rather than failing the load.
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
