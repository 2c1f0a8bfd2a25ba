"""`synd train`: learn a look from your own music.

The generator paints sequences of consecutive frames of real audio, each frame's base
image blended from its previous output (exactly as `synd.frameloop` does at render and
live time), and the decoder reads the sound back from a random crop whose size decays
during training. Sequences continue across steps from a pool of persistent chains, so
the generator learns to live with its own feedback over long stretches without long,
costly unrolls; every so often a chain restarts from a fresh pattern.

Runs unchanged under `torchrun --nproc_per_node N -m synd train ...`
(DistributedDataParallel; gloo on CPU, NCCL on CUDA): each process draws its own
batches and pool, gradients are averaged, and rank 0 writes checkpoints and sheets.

Resume is exact for `--steps`: every random draw of step k comes from a generator seeded
by (seed, step, rank), and the checkpoint holds weights, optimizer state and the pool.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from synd import losses as L
from synd.audio import AUDIO_SUFFIXES, AudioError, load_audio
from synd.bundle import ModelBundle, bundle_from_checkpoint, load_model
from synd.catalog import TRAINING_STATE
from synd.checkpoint import CheckpointError, read_checkpoint
from synd.device import pick_device
from synd.features import FeatureExtractor, FeatureStats
from synd.files import names_folder
from synd.frameloop import FrameLoop, slow_average, smooth_pattern
from synd.model import Generator, ModelConfig, SoundDecoder, crop_side, make_coords, scene_basis
from synd.presets import Preset, TrainSettings
from synd.progress import Progress, clock
from synd.quality import r2_score
from synd.sheets import loop_thumbnails, save_contact_sheet

log = logging.getLogger(__name__)

VALIDATION_WARMUP = 8


class TrainError(Exception):
    """Training cannot start; one line saying why."""


@dataclass
class TrainOptions:
    """Everything `synd train` was asked to do."""

    inputs: list[Path]
    preset: Preset
    out: Path
    steps: int | None = None
    minutes: float | None = None
    resume: bool = False
    init: str | None = None  # start from this model's weights and normalisation (fine-tune)
    device: str = "auto"
    seed: int = 0
    holdout: float = 0.1
    eval_every: int = 250
    sample_every: int = 500
    checkpoint_every: int = 250
    progress: bool = True
    stop_at: int | None = None  # end this run early at this step, as an interruption would
    on_step: Callable[[int], None] | None = None  # called after each optimizer step (synd bench)


def find_audio(inputs: list[Path]) -> list[Path]:
    """Audio files among `inputs`, folders searched recursively, in a stable order."""
    files: list[Path] = []
    for p in inputs:
        p = Path(p)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES)
        elif p.is_file():
            files.append(p)
        else:
            raise TrainError(f"no such file or folder: '{p}'")
    if not files:
        raise TrainError(f"no audio files in {', '.join(map(str, inputs))}")
    return files


@dataclass
class Corpus:
    """Raw features of the training and held-out audio."""

    train: list[np.ndarray]
    holdout: list[np.ndarray]
    summary: dict


def prepare_corpus(
    files: list[Path], preset: Preset, holdout: float, progress: bool, min_frames: int = 16
) -> Corpus:
    """Decode every file, extract features, split off held-out audio.

    Unreadable files and files shorter than `min_frames` are skipped with a warning."""
    extractor = FeatureExtractor(preset.features)
    feats, names, seconds = [], [], []

    def read(f: Path) -> None:
        try:
            samples = load_audio(f, preset.features.sample_rate)
        except AudioError as e:
            log.warning("skipping: %s", e)
            return
        x = extractor.offline(samples)
        if len(x) < min_frames:
            log.warning("skipping '%s': only %d frames, need %d", f, len(x), min_frames)
            return
        feats.append(x)
        names.append(f.name)
        seconds.append(len(samples) / preset.features.sample_rate)

    with Progress(len(files), "features", "file", enabled=progress, leave=False) as bar:
        for f in files:
            read(f)
            bar.update()
    if not feats:
        raise TrainError("none of the audio files could be read (or all were too short)")
    train: list[np.ndarray] = []
    held: list[np.ndarray] = []
    every = max(2, round(1 / holdout)) if holdout > 0 else 0
    for i, x in enumerate(feats):
        (held if every and len(feats) >= 2 and i % every == every - 1 else train).append(x)
    if holdout > 0 and not held and len(train) >= 2:  # fewer files than 1/holdout: the last
        held.append(train.pop())
    elif holdout > 0 and not held:  # a single file: hold out its last part
        x = train.pop()
        cut = int(len(x) * (1 - holdout))
        train.append(x[:cut])
        held.append(x[cut:])
    if not train:
        raise TrainError("nothing left to train on after the held-out split")
    summary = {
        "files": len(feats),
        "names": names[:50],
        "seconds": round(sum(seconds), 1),
        "train_frames": int(sum(len(x) for x in train)),
        "holdout_frames": int(sum(len(x) for x in held)),
    }
    return Corpus(train, held, summary)


class UnrolledStep(nn.Module):
    """One training step's forward pass: T frames with feedback, all losses.

    Wrapping generator and decoder in one module gives DistributedDataParallel exactly
    one forward per backward, however many frames are unrolled.
    """

    def __init__(self, generator: Generator, decoder: SoundDecoder, weights: L.LossWeights):
        super().__init__()
        self.generator = generator
        self.decoder = decoder
        self.weights = weights

    def forward(self, previous, pattern, feedback, coords, features, crops):
        w = self.weights
        terms = {
            k: previous.new_zeros(())
            for k in (
                "sound",
                "image",
                "noise",
                "stripes",
                "colorfulness",
                "color_variance",
                "temporal",
                "motion",
                "scene_swing",
                "scene_spread",
                "scene_calm",
                "composition",
                "texture_calm",
            )
        }
        fb = feedback.view(-1, 1, 1, 1)
        scene = self.generator.scene
        if scene is not None:
            basis = scene_basis(coords)
            whole = scene_basis(make_coords(9, 16, 16).to(coords))  # the frame at 16x9
            shown = None
        last_pattern = pattern  # the pattern of the frame before (texture_calm, from t = 1)
        for t in range(features.shape[0]):
            now = features[t]
            if scene is not None:
                # Tracks carry the features and their slow average side by side.
                now, slow = now.chunk(2, dim=1)
                pattern = scene(now, slow, basis)
                small = scene(now, slow, whole)
                terms["scene_swing"] = terms["scene_swing"] + L.scene_swing_loss(small, w.swing_target)
                terms["scene_spread"] = terms["scene_spread"] + L.scene_spread_loss(small, w.spread_target)
                if shown is not None:
                    terms["scene_calm"] = terms["scene_calm"] + L.scene_calm_loss(small, shown, w.calm_margin)
                shown = small
            base = fb * previous + (1.0 - fb) * pattern
            frame = self.generator(base, now, coords)
            top, left, size = crops[t]
            terms["sound"] = terms["sound"] + L.sound_loss(
                self.decoder(frame[..., top : top + size, left : left + size]), now
            )
            if w.image:
                terms["image"] = terms["image"] + L.image_loss(frame, pattern, w.image_hinge)
            if w.composition:
                terms["composition"] = terms["composition"] + L.composition_loss(frame, pattern)
            if w.texture_calm and t > 0:
                terms["texture_calm"] = terms["texture_calm"] + L.texture_calm_loss(
                    frame, pattern, previous, last_pattern
                )
            last_pattern = pattern
            if w.noise:
                terms["noise"] = terms["noise"] + L.noise_loss(frame)
            if w.stripes:
                terms["stripes"] = terms["stripes"] + L.stripes_loss(frame)
            if w.colorfulness:
                terms["colorfulness"] = terms["colorfulness"] + L.colorfulness_loss(frame)
            if w.color_variance:
                terms["color_variance"] = terms["color_variance"] + L.color_variance_loss(frame)
            if w.temporal:
                terms["temporal"] = terms["temporal"] + L.temporal_loss(frame, previous)
            if w.motion:
                terms["motion"] = terms["motion"] + L.motion_loss(frame, previous, w.motion_target)
            previous = frame
        n = features.shape[0]
        terms = {k: v / n for k, v in terms.items()}
        total = sum(getattr(w, k) * v for k, v in terms.items())
        return total, terms, previous


class ChainPool:
    """Persistent feedback chains: crop position, feedback amount, place in the audio, image."""

    FIELDS = ("previous", "pattern", "track", "frame", "top", "left", "feedback")

    def __init__(
        self,
        size: int,
        crop: int,
        native: int,
        tracks: list[torch.Tensor],
        settings: TrainSettings,
        scene: bool = False,
    ):
        self.size, self.crop, self.native = size, crop, native
        self.scene = scene  # tracks hold the features and their slow average side by side
        #: The (normalised) features of digital silence, a row like the tracks' rows.
        self.silence: torch.Tensor | None = None
        self.tracks = tracks
        self.lengths = torch.tensor([len(t) for t in tracks], dtype=torch.float64)
        self.settings = settings
        self.previous = torch.zeros(size, 3, crop, crop)
        self.pattern = torch.zeros(size, 3, crop, crop)
        self.track = torch.zeros(size, dtype=torch.long)
        self.frame = torch.full((size,), -1, dtype=torch.long)  # -1: needs a reset
        self.top = torch.zeros(size, dtype=torch.long)
        self.left = torch.zeros(size, dtype=torch.long)
        self.feedback = torch.zeros(size)

    def reset(self, idx: torch.Tensor, unroll: int, g: torch.Generator) -> None:
        """Start fresh chains at random tracks, places, crops and feedback amounts."""
        k = len(idx)
        if k == 0:
            return
        self.track[idx] = torch.multinomial(self.lengths, k, replacement=True, generator=g)
        room = (self.lengths[self.track[idx]] - unroll + 1).clamp(min=1)
        self.frame[idx] = (torch.rand(k, generator=g, dtype=torch.float64) * room).long()
        span = self.native - self.crop + 1
        self.top[idx] = torch.randint(0, span, (k,), generator=g)
        self.left[idx] = torch.randint(0, span, (k,), generator=g)
        lo = self.settings.feedback_min
        self.feedback[idx] = lo + (1 - lo) * torch.rand(k, generator=g)
        full = smooth_pattern(k, self.native, self.native, g)
        for j, i in enumerate(idx.tolist()):
            top, left = int(self.top[i]), int(self.left[i])
            self.pattern[i] = full[j, :, top : top + self.crop, left : left + self.crop]
        self.previous[idx] = self.pattern[idx]

    def draw(self, batch: int, unroll: int, g: torch.Generator):
        """Pick chains for one step (resetting finished or unlucky ones); returns indices
        and their features (unroll, batch, F)."""
        idx = torch.randperm(self.size, generator=g)[:batch]
        ends = self.frame[idx] + unroll
        done = (self.frame[idx] < 0) | (ends > self.lengths[self.track[idx]].long())
        done |= torch.rand(len(idx), generator=g) < self.settings.reset_prob
        self.reset(idx[done], unroll, g)
        feats = torch.stack(
            [
                self.tracks[int(self.track[i])][int(self.frame[i]) : int(self.frame[i]) + unroll]
                for i in idx.tolist()
            ],
            dim=1,
        )
        feats = self.augment(feats, g)
        if self.silence is not None and self.settings.silence:
            # Music has little digital silence; a show has plenty, and its picture must calm.
            quiet = torch.rand(len(idx), generator=g) < self.settings.silence
            feats[:, quiet] = self.silence.to(feats)
        return idx, feats

    def augment(self, feats: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Shift each sequence by a random offset and add a little noise per frame, so the
        networks also learn sounds between and around those of the training audio (the
        generator/decoder pair is an autoencoder: any feature vector is a fair example)."""
        sigma = self.settings.augment
        if not sigma:
            return feats
        if self.scene:  # features | slow average: one offset for both, noise on the features
            now, slow = feats.chunk(2, dim=2)
            offset = sigma * torch.randn(1, now.shape[1], now.shape[2], generator=g)
            noise = (sigma / 3) * torch.randn(now.shape, generator=g)
            return torch.cat([now + offset + noise, slow + offset], dim=2)
        offset = sigma * torch.randn(1, feats.shape[1], feats.shape[2], generator=g)
        noise = (sigma / 3) * torch.randn(feats.shape, generator=g)
        return feats + offset + noise

    def coords(self, idx: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                make_coords(
                    self.crop,
                    self.crop,
                    self.native,
                    int(self.top[i]),
                    int(self.left[i]),
                    frame=(self.native, self.native),
                )
                for i in idx.tolist()
            ]
        )

    def advance(self, idx: torch.Tensor, last: torch.Tensor, unroll: int) -> None:
        self.previous[idx] = last.detach().to(self.previous.device)
        self.frame[idx] += unroll

    def tensors(self) -> dict[str, torch.Tensor]:
        return {f: getattr(self, f).clone() for f in self.FIELDS}

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        for f in self.FIELDS:
            getattr(self, f).copy_(tensors[f])


def _step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + step * 7919 + rank * 104_729) % (2**63))


def _lr(settings: TrainSettings, step: int, total: float | None) -> float:
    warm = min(1.0, (step + 1) / 100)
    if not total:
        return settings.lr * warm
    progress = min(1.0, step / total)
    return settings.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def decoder_crop(settings: TrainSettings, step: int, total: float | None) -> int:
    """Decoder crop side in pixels: the whole frame at first, decaying to `min_crop`."""
    progress = min(1.0, step / (0.7 * total)) if total else min(1.0, step / 2000)
    return crop_side(settings.size, 1.0 - (1.0 - settings.min_crop) * progress)


@torch.no_grad()
def validate(
    generator: Generator,
    decoder: SoundDecoder,
    holdout: list[torch.Tensor],
    settings: TrainSettings,
    native: int,
    tile: int,
    chains: int = 16,
    frames: int = 120,
    seed: int = 1234,
) -> float | None:
    """Held-out R^2: fixed chains of crops run through unseen audio with feedback, read
    by the decoder in `tile`-pixel tiles (the crop size it is training on now).

    None when there is no held-out audio long enough, or it does not vary."""
    holdout = [t for t in holdout if len(t) >= 2 * VALIDATION_WARMUP]
    if not holdout:
        return None
    g = torch.Generator().manual_seed(seed)
    scene = generator.scene
    pool = ChainPool(
        chains, settings.size, native, holdout, replace(settings, reset_prob=0.0), scene=scene is not None
    )
    length = min(frames, int(min(len(t) for t in holdout)))
    idx = torch.arange(chains)
    pool.reset(idx, length, g)
    feats = torch.stack(
        [holdout[int(pool.track[i])][int(pool.frame[i]) : int(pool.frame[i]) + length] for i in idx.tolist()],
        dim=1,
    )
    device = next(generator.parameters()).device
    coords = pool.coords(idx).to(device)
    prev, pattern = pool.previous.to(device), pool.pattern.to(device)
    fb = pool.feedback.to(device).view(-1, 1, 1, 1)
    preds, targets = [], []
    basis = scene_basis(coords) if scene is not None else None
    for t in range(length):
        now = feats[t].to(device)
        if scene is not None:
            now, slow = now.chunk(2, dim=1)
            pattern = scene(now, slow, basis)
        frame = generator(fb * prev + (1 - fb) * pattern, now, coords)
        if t >= VALIDATION_WARMUP:
            preds.append(decoder.read(frame, tile).cpu())
            targets.append(now.cpu())
        prev = frame
    try:
        return r2_score(torch.cat(targets).numpy(), torch.cat(preds).numpy())
    except ValueError:  # held-out audio that does not vary (silence)
        return None


def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors = {}
    for idx, state in sd["state"].items():
        for k, v in state.items():
            tensors[f"optim.{idx}.{k}"] = torch.as_tensor(v)
    return tensors, {"param_groups": sd["param_groups"]}


def _load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict] = {}
    for name, v in tensors.items():
        if name.startswith("optim."):
            _, idx, k = name.split(".", 2)
            state.setdefault(int(idx), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def state_path(out: Path) -> Path:
    """The resumable training state beside the model file (mine.train.safetensors)."""
    return out.with_name(out.stem + TRAINING_STATE)


def samples_path(out: Path) -> Path:
    """The folder of sample sheets beside the model file (mine.samples/)."""
    return out.with_name(out.stem + ".samples")


def model_path(out: str | os.PathLike, inputs: list[Path], preset: str) -> Path:
    """The model file that `synd train --out OUT` writes.

    OUT naming a folder (an existing one, or a path ending in a separator: made if
    missing) gets the model inside it, named after the first input and the preset
    (`~/music` with prism: `music-prism.safetensors`), never the preset's own name, which
    would shadow the shipped model. Otherwise OUT is the file, `.safetensors` added when
    it has another ending.
    """
    from synd.render import safe_stem

    if names_folder(out):
        first = Path(inputs[0]).expanduser() if inputs else Path("model")
        name = first.resolve().name if first.is_dir() else first.stem
        return Path(out) / f"{safe_stem(f'{name}-{preset}')}.safetensors"
    path = Path(out)
    return path if path.suffix == ".safetensors" else path.with_name(path.name + ".safetensors")


#: A held-out R^2 below this at the end of a run: the model has not learned the sound.
LEARNED_R2 = 0.5


def shipped_training() -> str | None:
    """How long the shipped models trained from scratch, from their own metadata: '3000
    steps, 10 to 39 minutes each on a CPU'; None when there are none to read. A model
    fine-tuned from another (`--init`, recorded as `init`) is left out: its minutes say
    nothing of a run from scratch."""
    from synd.paths import shipped_dir

    runs = []
    for path in sorted(shipped_dir("models").glob("*.safetensors")):
        try:
            meta = read_checkpoint(path)[1]
            if meta.get("init"):
                continue
            summary = meta.get("summary") or {}
            runs.append((int(summary["steps"]), float(summary["wall_seconds"]) / 60, summary.get("device")))
        except Exception:  # noqa: BLE001 - a missing or odd file only leaves out a number
            continue
    if not runs:
        return None
    steps = sorted({r[0] for r in runs})
    lo, hi = round(min(r[1] for r in runs)), round(max(r[1] for r in runs))
    minutes = f"{lo} minutes" if lo == hi else f"{lo} to {hi} minutes each"
    where = " on a CPU" if {r[2] for r in runs} == {"cpu"} else ""
    return f"{'/'.join(map(str, steps))} steps, {minutes}{where}"


def learning_warning(result: dict) -> str | None:
    """One line when the run's final held-out R^2 says the model cannot read the sound
    back from its pictures yet (below `LEARNED_R2`); None otherwise, or when unmeasured."""
    r2 = result.get("holdout_r2_crops")
    if r2 is None or r2 >= LEARNED_R2:
        return None
    how = "below zero (worse than always guessing the average sound)" if r2 < 0 else f"below {LEARNED_R2}"
    shipped = shipped_training()
    return (
        f"held-out R^2 {r2:.2f} is {how}: the model has not learned the sound yet"
        + (f" (the shipped models trained {shipped})" if shipped else "")
        + "; train longer: more --steps or --minutes, --resume continues this run"
    )


def summary_table(result: dict, out: Path, weights: L.LossWeights | None = None) -> str:
    """The end of a run as a short table: steps, time, held-out R^2, the loss terms in use
    and the files written beside the model `out`."""
    r2 = result.get("holdout_r2_crops")
    reached = result.get("minutes_to_r2_0.9")
    losses = [
        f"{k[len('loss_') :]} {v:.4g}"
        for k, v in result.items()
        if k.startswith("loss_") and (getattr(weights, k[len("loss_") :], 0) if weights is not None else v)
    ]
    also = [state_path(out).name + " (for --resume)"]
    if samples_path(out).is_dir():
        also.append(samples_path(out).name + "/ (sample sheets)")
    measured = f"{r2:.3f} (1 = the decoder reads the sound back perfectly)" if r2 is not None else None
    rows = [
        ("steps", str(result.get("steps"))),
        ("time", clock(result.get("wall_seconds") or 0)),
        ("held-out R^2", measured or "not measured (no held-out audio long enough)"),
        ("R^2 0.9 after", f"{reached} minutes" if reached is not None else "not reached"),
        ("loss", ", ".join(losses) or "-"),
        ("also wrote", ", ".join(also)),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def _read_resume_state(spath: Path, opts: TrainOptions) -> tuple[dict[str, torch.Tensor], dict]:
    """The interrupted run's state, checked against this run's settings."""
    if not spath.exists():
        raise TrainError(f"nothing to resume: no training state at '{spath}'")
    tensors, meta = read_checkpoint(spath)
    tr = meta.get("training")
    if not isinstance(tr, dict) or "budget" not in tr:
        raise TrainError(f"cannot resume '{spath}': it holds no training state")
    # A setting newer than the saved run counts as its default there.
    defaults = asdict(TrainSettings())
    changed = sorted(
        k for k, v in asdict(opts.preset.train).items() if tr["settings"].get(k, defaults[k]) != v
    )
    if meta.get("preset", {}).get("name") != opts.preset.name:
        changed.insert(0, "preset")
    # Settings such as fourier_max change no weight's shape, so loading would not notice.
    # (A run from before a setting existed has its default.)
    try:
        before = ModelConfig.from_dict(meta["architecture"])
    except (KeyError, TypeError, ValueError):
        before = None
    if before != _preset_config(opts.preset):
        changed.insert(0, "architecture")
    if tr["seed"] != opts.seed:
        changed.append("seed")
    if changed:
        raise TrainError(
            f"cannot resume '{spath}': {', '.join(changed)} differ from the "
            "interrupted run (resume with the same preset and flags)"
        )
    return tensors, meta


def _preset_config(preset: Preset) -> ModelConfig:
    """The network `preset` trains."""
    return ModelConfig.from_dict({"feature_dim": preset.features.dim, **preset.architecture})


def _init_model(name: str, preset: Preset) -> ModelBundle:
    """The model `--init` starts from; TrainError unless it has the preset's network and
    features (its weights would not fit, or would hear other inputs)."""
    try:
        start = load_model(name)
    except CheckpointError as e:
        raise TrainError(f"--init: {e}") from None
    if start.config != _preset_config(preset):
        raise TrainError(f"--init '{name}': its network differs from the one preset '{preset.name}' trains")
    if start.features != preset.features:
        raise TrainError(f"--init '{name}': it hears other features than preset '{preset.name}'")
    return start


def _check_writable(out: Path) -> None:
    """Fail now, not after the first 250 steps, when the model cannot be written."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TrainError(f"cannot write '{out}': {e.strerror or e}") from None
    if not os.access(out.parent, os.W_OK):
        raise TrainError(f"cannot write '{out}': folder '{out.parent}' is not writable")


def train(opts: TrainOptions) -> dict:
    """Train a model as `opts` says; returns the final metrics (rank 0's)."""
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = pick_device(opts.device)
    if distributed:
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
            # NCCL for the gradients, gloo for the small CPU-side collectives (stop flag, pool).
            dist.init_process_group("cpu:gloo,cuda:nccl")
        else:
            if device.type != "cpu":
                log.warning("distributed training on %s is not supported; using the CPU", device.type)
                device = torch.device("cpu")
            dist.init_process_group("gloo")
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    main = rank == 0
    try:
        result = _train(opts, device, rank, world, main)
        if distributed:
            # Leave together: a rank tearing gloo down while another still writes the
            # last checkpoint aborted now and then at exit ("terminate called ...").
            dist.barrier()
        return result
    finally:
        if distributed:
            dist.destroy_process_group()


def _train(opts: TrainOptions, device: torch.device, rank: int, world: int, main: bool) -> dict:
    preset, settings = opts.preset, opts.preset.train
    spath = state_path(opts.out)
    saved = _read_resume_state(spath, opts) if opts.resume else None
    if saved is not None and opts.steps is None and opts.minutes is None:
        opts.steps, opts.minutes = (
            saved[1]["training"]["budget"].get("steps"),
            saved[1]["training"]["budget"].get("minutes"),
        )
    if opts.steps is None and opts.minutes is None:
        opts.steps = settings.steps
    if main:
        _check_writable(opts.out)
    files = find_audio(opts.inputs)
    corpus = prepare_corpus(
        files, preset, opts.holdout, opts.progress and main, min_frames=settings.unroll + 1
    )
    if saved is not None:
        # Same audio, same normalisation as the interrupted run, or the chains make no sense.
        before = saved[1].get("data", {})
        if (before.get("names"), before.get("files")) != (corpus.summary["names"], corpus.summary["files"]):
            raise TrainError(f"cannot resume '{spath}': the audio differs from the interrupted run")
        stats = FeatureStats.from_dict(saved[1]["normalization"])
    elif opts.init:
        start = _init_model(opts.init, preset)
        stats = start.stats  # the weights learned these inputs: keep their scale
    else:
        stats = FeatureStats.fit(np.concatenate(corpus.train))
    tracks = [stats.normalize(x) for x in corpus.train]
    holdout = [stats.normalize(x) for x in corpus.holdout]

    try:
        config = _preset_config(preset)
    except (TypeError, ValueError) as e:
        raise TrainError(f"preset '{preset.name}' [architecture]: {e}") from None
    fps = preset.features.fps

    def as_tensors(parts: list[np.ndarray]) -> list[torch.Tensor]:
        # A scene also hears the slow average of the features, kept beside them.
        return [
            torch.from_numpy(np.concatenate([x, slow_average(x, fps)], axis=1) if config.has_scene else x)
            for x in parts
        ]

    train_tracks, held_tracks = as_tensors(tracks), as_tensors(holdout)
    torch.manual_seed(opts.seed)
    bundle = ModelBundle.new(
        config,
        preset.features,
        stats,
        meta={
            "name": opts.out.stem,
            "preset": preset.to_dict(),
            "loss_weights": preset.loss.to_dict(),
            "data": corpus.summary,
            **({"init": opts.init} if opts.init and saved is None else {}),
        },
    )
    if opts.init and saved is None:
        bundle.generator.load_state_dict(start.generator.state_dict())
        bundle.decoder.load_state_dict(start.decoder.state_dict())
    pool = ChainPool(
        settings.pool, settings.size, config.native_size, train_tracks, settings, scene=config.has_scene
    )
    quiet = stats.normalize(
        FeatureExtractor(preset.features).offline(np.zeros(preset.features.sample_rate, np.float32))
    )[-1:]
    pool.silence = as_tensors([quiet])[0][0]
    step_module = UnrolledStep(bundle.generator, bundle.decoder, preset.loss).to(device)
    params = list(bundle.generator.parameters()) + list(bundle.decoder.parameters())
    opt = torch.optim.Adam(params, lr=settings.lr)
    step, wall, history = 0, 0.0, []

    if saved is not None:
        tensors, meta = saved
        restored = bundle_from_checkpoint(tensors, meta, spath)
        bundle.generator.load_state_dict(restored.generator.state_dict())
        bundle.decoder.load_state_dict(restored.decoder.state_dict())
        bundle.stats = restored.stats
        _load_optimizer(opt, tensors, meta["training"]["optimizer"])
        tr = meta["training"]
        step, wall, history = tr["step"], tr["wall_seconds"], tr["history"]
        pool_t = {k[len("pool.") :]: v for k, v in tensors.items() if k.startswith("pool.")}
        if tr.get("world", 1) == world:
            pool.load({k: v[rank * settings.pool : (rank + 1) * settings.pool] for k, v in pool_t.items()})
        elif main:
            log.warning("resuming with %d processes instead of %d: chains restart", world, tr["world"])
        if main:
            log.info("resumed '%s' at step %d", spath, step)

    model: nn.Module = step_module
    if world > 1:
        model = nn.parallel.DistributedDataParallel(
            step_module, device_ids=[device.index] if device.type == "cuda" else None
        )

    total_steps = opts.steps
    budget = opts.minutes * 60.0 if opts.minutes else None
    # With --minutes the bar fills with time and counts the steps beside it.
    bar = Progress(
        total_steps,
        f"train {opts.out.stem}",
        "step",
        enabled=opts.progress and main,
        initial=step,
        budget=budget,
        elapsed=wall,
    )
    started = time.monotonic() - wall
    first_r2_target = next((h["minutes"] for h in history if h.get("r2", 0) >= 0.9), None)
    sheet_dir = samples_path(opts.out)

    def elapsed() -> float:
        return time.monotonic() - started

    def finished() -> bool:
        if opts.stop_at is not None and step >= opts.stop_at:
            return True
        if total_steps is not None:
            return step >= total_steps
        stop = torch.tensor([1.0 if budget is not None and elapsed() >= budget else 0.0])
        if world > 1:
            dist.broadcast(stop, 0)  # every rank stops at the same step
        return bool(stop.item())

    def checkpoint(metrics: dict) -> None:
        nonlocal wall
        wall = elapsed()
        pool_t = pool.tensors()
        if world > 1:
            gathered = {}
            for k, v in pool_t.items():
                parts = [torch.empty_like(v) for _ in range(world)]
                dist.all_gather(parts, v)
                gathered[k] = torch.cat(parts)
            pool_t = gathered
        if not main:
            return
        opt_t, opt_meta = _optimizer_tensors(opt)
        training = {
            "step": step,
            "wall_seconds": round(wall, 2),
            "seed": opts.seed,
            "world": world,
            "history": history,
            "optimizer": opt_meta,
            "settings": asdict(settings),
            "budget": {"steps": total_steps} if total_steps else {"minutes": opts.minutes},
        }
        summary = {
            "steps": step,
            "wall_seconds": round(wall, 1),
            "metrics": metrics,
            "processes": world,
            "device": device.type,
        }
        extra = {**opt_t, **{f"pool.{k}": v for k, v in pool_t.items()}}
        bundle.save(spath, extra=extra, extra_meta={"training": training, "summary": summary})
        bundle.save(opts.out, extra_meta={"summary": summary})

    metrics: dict = {}
    if total_steps is not None and step >= total_steps:
        raise TrainError(f"'{spath}' is already at step {step} of {total_steps}; ask for more --steps")

    def _loop() -> None:
        nonlocal step, metrics, first_r2_target
        while True:
            g = _step_generator(opts.seed, step, rank)
            lr = _lr(settings, step, total_steps)
            for group in opt.param_groups:
                group["lr"] = lr
            idx, feats = pool.draw(settings.batch, settings.unroll, g)
            crop = decoder_crop(settings, step, total_steps)
            crops = [
                (
                    int(torch.randint(0, settings.size - crop + 1, (1,), generator=g)),
                    int(torch.randint(0, settings.size - crop + 1, (1,), generator=g)),
                    crop,
                )
                for _ in range(settings.unroll)
            ]
            loss, terms, last = model(
                pool.previous[idx].to(device),
                pool.pattern[idx].to(device),
                pool.feedback[idx].to(device),
                pool.coords(idx).to(device),
                feats.to(device),
                crops,
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            pool.advance(idx, last, settings.unroll)
            step += 1
            if opts.on_step is not None:
                opts.on_step(step)

            if main:
                bar.set_postfix(
                    {k: f"{v.item():.3f}" for k, v in terms.items() if getattr(preset.loss, k)}, refresh=False
                )
                bar.update(1)
            last_step = finished()
            if step % opts.eval_every == 0 or last_step:
                r2 = (
                    validate(
                        bundle.generator,
                        bundle.decoder,
                        held_tracks,
                        settings,
                        config.native_size,
                        decoder_crop(settings, step, total_steps),
                    )
                    if main and held_tracks
                    else None
                )
                entry = {"step": step, "minutes": round(elapsed() / 60, 2), "loss": round(loss.item(), 5)}
                if r2 is not None:
                    entry["r2"] = round(r2, 4)
                    if r2 >= 0.9 and first_r2_target is None:
                        first_r2_target = entry["minutes"]
                history.append(entry)
                metrics = {
                    "holdout_r2_crops": entry.get("r2"),
                    "minutes_to_r2_0.9": first_r2_target,
                    **{f"loss_{k}": round(v.item(), 5) for k, v in terms.items()},
                }
                if main:
                    bar.write(
                        f"step {step}: loss {loss.item():.4f}"
                        + (f", held-out R^2 {r2:.3f}" if r2 is not None else "")
                    )
            if main and (step % opts.sample_every == 0 or last_step) and held_tracks:
                write_sample_sheet(bundle, held_tracks, stats, preset, sheet_dir / f"step_{step:06d}.png")
            if step % opts.checkpoint_every == 0 or last_step:
                checkpoint(metrics)
            if last_step:
                break

    try:
        _loop()
    except KeyboardInterrupt:
        bar.close()
        if world == 1 and step > 0:
            checkpoint(metrics)
            bar.write(f"interrupted: saved step {step}; --resume continues from there")
        raise
    bar.close()
    return {"steps": step, "wall_seconds": round(elapsed(), 1), **metrics}


def write_sample_sheet(
    bundle: ModelBundle,
    holdout: list[torch.Tensor],
    stats: FeatureStats,
    preset: Preset,
    path: Path,
    count: int = 16,
    every: int = 6,
) -> None:
    """Frames of held-out audio through the real frame loop, as one PNG."""
    track = max(holdout, key=len)[:, : len(stats.mean)]  # without a scene's slow average
    raw = track[: count * every].numpy() * stats.std + stats.mean  # back to raw features
    native = bundle.config.native_size
    loop = FrameLoop(
        bundle,
        native,
        native,
        look=replace(preset.look, hue=0.0),
        seed=0,
        device=next(bundle.generator.parameters()).device,
    )
    thumbs, _ = loop_thumbnails(loop, raw, every, count)
    save_contact_sheet(thumbs, path, columns=8, title=f"{bundle.name}: held-out audio, every {every}th frame")
