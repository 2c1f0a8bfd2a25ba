"""A trained model as one object: networks, feature config and normalisation, metadata.

This is the only place that turns networks into checkpoint files and back
(`synd.checkpoint` does the file format itself).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from synd.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from synd.errors import one_line, shown_name
from synd.features import FeatureConfig, FeatureStats
from synd.model import Generator, ModelConfig, SoundDecoder, crop_side
from synd.paths import resolve


@dataclass
class ModelBundle:
    """Generator + decoder with everything needed to use them on new audio."""

    config: ModelConfig
    features: FeatureConfig
    stats: FeatureStats
    generator: Generator
    decoder: SoundDecoder
    meta: dict = field(default_factory=dict)
    path: Path | None = None

    @classmethod
    def new(
        cls, config: ModelConfig, features: FeatureConfig, stats: FeatureStats, meta: dict | None = None
    ) -> ModelBundle:
        """Freshly initialised networks (seed torch first for reproducibility)."""
        return cls(config, features, stats, Generator(config), SoundDecoder(config), meta or {})

    @property
    def decoder_tile(self) -> int:
        """Tile side for reading whole frames: the crop the decoder finished training on."""
        preset = self.meta.get("preset")
        train = preset.get("train") if isinstance(preset, dict) else None
        train = train if isinstance(train, dict) else {}
        return crop_side(int(train.get("size", 64)), float(train.get("min_crop", 0.5)))

    @property
    def name(self) -> str:
        return self.meta.get("name") or (self.path.stem if self.path else "unnamed")

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Network weights under `generator.` and `decoder.` prefixes."""
        tensors = {f"generator.{k}": v for k, v in self.generator.state_dict().items()}
        tensors.update({f"decoder.{k}": v for k, v in self.decoder.state_dict().items()})
        return tensors

    def metadata(self) -> dict:
        return {
            **self.meta,
            "architecture": self.config.to_dict(),
            "features": self.features.to_dict(),
            "normalization": self.stats.to_dict(),
        }

    def save(
        self,
        path: str | os.PathLike,
        extra: dict[str, torch.Tensor] | None = None,
        extra_meta: dict | None = None,
    ) -> None:
        """Atomically write the model (plus optional extra tensors, e.g. training state)."""
        tensors = self.state_tensors()
        tensors.update(extra or {})
        save_checkpoint(path, tensors, {**self.metadata(), **(extra_meta or {})})

    def to(self, device: torch.device | str) -> ModelBundle:
        self.generator.to(device)
        self.decoder.to(device)
        return self


#: Tensors a training-state file (`synd train`'s OUT.train.safetensors) carries beside
#: the networks: the optimizer's state and the persistent chains.
TRAINING_STATE_PREFIXES = ("optim.", "pool.")
#: Weight types a checkpoint may store; they are converted to float32 on loading.
WEIGHT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def _more(names: list[str]) -> str:
    return f"{names[0]}{f' (+{len(names) - 1} more)' if len(names) > 1 else ''}"


def _configs(meta: dict, where: str) -> tuple[ModelConfig, FeatureConfig, FeatureStats]:
    """The architecture, feature config and normalisation the metadata declares, checked
    against each other."""
    for table in ("architecture", "features", "normalization"):
        if table in meta and not isinstance(meta[table], dict):
            raise CheckpointError(
                f"{where}: bad metadata ({table} must be a table, got {type(meta[table]).__name__})"
            )
    try:
        config = ModelConfig.from_dict(meta["architecture"])
        features = FeatureConfig.from_dict(meta["features"])
        stats = FeatureStats.from_dict(meta["normalization"])
    except KeyError as e:
        raise CheckpointError(f"{where}: metadata lacks {e.args[0]!r}") from None
    except (TypeError, ValueError, AttributeError, OverflowError) as e:
        # Values of the wrong JSON type (a list for a table, a string for a number).
        raise CheckpointError(f"{where}: bad metadata ({one_line(e, 200)})") from None
    if config.feature_dim != features.dim or len(stats.mean) != features.dim:
        raise CheckpointError(
            f"{where}: metadata disagrees: architecture expects "
            f"{config.feature_dim} features, feature config gives "
            f"{features.dim}, normalisation has {len(stats.mean)}"
        )
    return config, features, stats


def _expected_shapes(config: ModelConfig, where: str) -> dict[str, tuple[int, ...]]:
    """Every tensor name (with its `generator.`/`decoder.` prefix) and shape the
    architecture has, from networks built on the meta device: no memory is allocated, so
    metadata claiming an enormous network costs nothing before it is refused."""
    try:
        with torch.device("meta"):
            nets = {"generator.": Generator(config), "decoder.": SoundDecoder(config)}
    except (RuntimeError, ValueError, OverflowError, TypeError) as e:
        raise CheckpointError(
            f"{where}: the architecture in the metadata cannot be built ({one_line(e, 200)})"
        ) from None
    return {prefix + k: tuple(v.shape) for prefix, net in nets.items() for k, v in net.state_dict().items()}


def _check_tensors(
    tensors: dict[str, torch.Tensor], expected: dict[str, tuple[int, ...]], meta: dict, where: str
) -> None:
    """Refuse tensors that are missing, unexpected, of another shape or type, or not finite."""
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise CheckpointError(f"{where}: missing tensor {_more(missing)}")
    allowed = TRAINING_STATE_PREFIXES if isinstance(meta.get("training"), dict) else ()
    extra = sorted(k for k in set(tensors) - set(expected) if not k.startswith(allowed))
    if extra:
        raise CheckpointError(
            f"{where}: unexpected tensor {_more(extra)}, which the architecture in the metadata does not have"
        )
    for k, shape in expected.items():
        v = tensors[k]
        if tuple(v.shape) != shape:
            raise CheckpointError(
                f"{where}: tensor {k} has shape {tuple(v.shape)}, the architecture needs {shape}"
            )
        if v.dtype not in WEIGHT_DTYPES:
            raise CheckpointError(
                f"{where}: tensor {k} has type {str(v.dtype).removeprefix('torch.')}, "
                "weights must be float32, float16, bfloat16 or float64"
            )
        if not torch.isfinite(v).all():
            raise CheckpointError(f"{where}: tensor {k} holds NaN or Inf")


def bundle_from_checkpoint(tensors: dict[str, torch.Tensor], meta: dict, path: Path) -> ModelBundle:
    """Build networks from checkpoint contents, checking every tensor against the metadata.

    Raises CheckpointError (one line) when the metadata is malformed or disagrees with
    itself, or when a tensor is missing, unexpected, or of the wrong shape or type: all
    checked before the networks are built, never as a torch size-mismatch error. Besides
    the networks' tensors only a training-state file (metadata with a `training` table)
    may carry more: its optimizer state and chains.
    """
    where = f"cannot load model '{shown_name(path)}'"
    config, features, stats = _configs(meta, where)
    _check_tensors(tensors, _expected_shapes(config, where), meta, where)
    bundle = ModelBundle.new(
        config,
        features,
        stats,
        meta={k: v for k, v in meta.items() if k not in ("architecture", "features", "normalization")},
    )
    bundle.path = path
    for prefix, net in (("generator.", bundle.generator), ("decoder.", bundle.decoder)):
        net.load_state_dict({k: tensors[prefix + k].float() for k in net.state_dict()})
    bundle.generator.eval()
    bundle.decoder.eval()
    return bundle


def load_model(name: str, allow_paths: bool = True) -> ModelBundle:
    """Load a model by bare name (user models, then shipped) or by file path."""
    try:
        path = resolve("models", name, ".safetensors", allow_paths=allow_paths)
    except FileNotFoundError as e:
        raise CheckpointError(shown_name(str(e), limit=1000)) from None
    except (OSError, ValueError) as e:  # e.g. a name too long for the file system
        reason = getattr(e, "strerror", None) or e
        raise CheckpointError(f"cannot load model '{shown_name(name)}': {reason}") from None
    tensors, meta = read_checkpoint(path)
    return bundle_from_checkpoint(tensors, meta, path)
