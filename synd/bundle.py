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
    def new(cls, config: ModelConfig, features: FeatureConfig, stats: FeatureStats,
            meta: dict | None = None) -> "ModelBundle":
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
        return {**self.meta, "architecture": self.config.to_dict(),
                "features": self.features.to_dict(), "normalization": self.stats.to_dict()}

    def save(self, path: str | os.PathLike, extra: dict[str, torch.Tensor] | None = None,
             extra_meta: dict | None = None) -> None:
        """Atomically write the model (plus optional extra tensors, e.g. training state)."""
        tensors = self.state_tensors()
        tensors.update(extra or {})
        save_checkpoint(path, tensors, {**self.metadata(), **(extra_meta or {})})

    def to(self, device: torch.device | str) -> "ModelBundle":
        self.generator.to(device)
        self.decoder.to(device)
        return self


def bundle_from_checkpoint(tensors: dict[str, torch.Tensor], meta: dict,
                           path: Path) -> ModelBundle:
    """Build networks from checkpoint contents, checking every tensor against the metadata."""
    where = f"cannot load model '{path}'"
    try:
        config = ModelConfig.from_dict(meta["architecture"])
        features = FeatureConfig.from_dict(meta["features"])
        stats = FeatureStats.from_dict(meta["normalization"])
    except KeyError as e:
        raise CheckpointError(f"{where}: metadata lacks {e.args[0]!r}") from None
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: bad metadata ({e})") from None
    if config.feature_dim != features.dim or len(stats.mean) != features.dim:
        raise CheckpointError(f"{where}: metadata disagrees: architecture expects "
                              f"{config.feature_dim} features, feature config gives "
                              f"{features.dim}, normalisation has {len(stats.mean)}")
    bundle = ModelBundle.new(config, features, stats, meta={k: v for k, v in meta.items()
                                                             if k not in ("architecture", "features", "normalization")})
    bundle.path = path
    for prefix, net in (("generator.", bundle.generator), ("decoder.", bundle.decoder)):
        expected = net.state_dict()
        got = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        missing = sorted(set(expected) - set(got))
        if missing:
            raise CheckpointError(f"{where}: missing tensor {prefix}{missing[0]}"
                                  f"{f' (+{len(missing) - 1} more)' if len(missing) > 1 else ''}")
        for k, v in expected.items():
            if got[k].shape != v.shape:
                raise CheckpointError(f"{where}: tensor {prefix}{k} has shape "
                                      f"{tuple(got[k].shape)}, the architecture needs {tuple(v.shape)}")
            if not torch.isfinite(got[k]).all():
                raise CheckpointError(f"{where}: tensor {prefix}{k} holds NaN or Inf")
        net.load_state_dict({k: got[k].float() for k in expected})
    bundle.generator.eval()
    bundle.decoder.eval()
    return bundle


def load_model(name: str, allow_paths: bool = True) -> ModelBundle:
    """Load a model by bare name (user models, then shipped) or by file path."""
    try:
        path = resolve("models", name, ".safetensors", allow_paths=allow_paths)
    except FileNotFoundError as e:
        raise CheckpointError(str(e)) from None
    tensors, meta = read_checkpoint(path)
    return bundle_from_checkpoint(tensors, meta, path)
