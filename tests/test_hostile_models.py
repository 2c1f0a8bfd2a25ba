"""Hostile and odd model and preset files, and names arriving over OSC or MIDI.

Each file is refused with one clear line naming it and the problem (or, where the file
is merely unusual, loads correctly), through every way synd loads models: the checkpoint
reader, `load_model` by path and by name, a preset naming the model, a control slot
(`synd.catalog.look_for`, what OSC and MIDI reach), `synd info` and `synd render --model`.
Pickles carry a payload that creates a marker file when unpickled; the marker must never
appear (and a control test shows that unpickling really does create it).

Run with ``-s`` (or ``-rP``) to see the table of files and outcomes.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import struct
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from synd.audio import write_wav
from synd.bundle import ModelBundle, load_model
from synd.catalog import choices, look_for, resolve_look
from synd.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from synd.control import Controller
from synd.features import FeatureConfig, FeatureStats
from synd.model import ModelConfig
from synd.osc import Commands
from synd.presets import PresetError, list_presets, load_preset
from tests.helpers.audio import music_clip
from tests.helpers.models import make_tiny_bundle

OUTCOMES: dict[str, str] = {}  # file -> outcome, printed as a table at the end


@pytest.fixture(scope="module", autouse=True)
def summary_table():
    """Print every file tried and its outcome once the module's tests are done."""
    yield
    width = max(map(len, OUTCOMES), default=4)
    print(f"\n{len(OUTCOMES)} model and preset files tried:")
    for case, outcome in OUTCOMES.items():
        print(f"  {case:<{width}}  ->  {outcome}")


@pytest.fixture
def home(tmp_path, monkeypatch):
    """The user's models and presets folders, in tmp_path."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    folders = SimpleNamespace(
        models=tmp_path / "data" / "synd" / "models",
        presets=tmp_path / "config" / "synd" / "presets",
        root=tmp_path,
    )
    folders.models.mkdir(parents=True)
    folders.presets.mkdir(parents=True)
    return folders


def refused(load, path, error=CheckpointError, problem: str = "") -> str:
    """Call `load()`, expecting one line of `error` that names the file; returns it."""
    with pytest.raises(error) as err:
        load()
    message = str(err.value)
    assert "\n" not in message, message
    assert Path(path).name in message and problem in message, message
    return message


# -- pickles with a payload -----------------------------------------------------------


class Payload:
    """Unpickling this runs a shell command that creates `marker`: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def write_pickles(folder: Path, marker: Path) -> dict[str, Path]:
    """The same payload as a raw pickle and through torch.save, under model names."""
    evil = {"generator.stem_image.weight": Payload(marker)}
    files = {}
    for stem, suffix in (("raw_pickle", ".safetensors"), ("raw_pickle", ".pt")):
        files[f"{stem}{suffix}"] = folder / f"{stem}{suffix}"
        files[f"{stem}{suffix}"].write_bytes(pickle.dumps(evil, protocol=4))
    files["pickle_protocol0.safetensors"] = folder / "pickle_protocol0.safetensors"
    files["pickle_protocol0.safetensors"].write_bytes(pickle.dumps(evil, protocol=0))
    for stem, suffix in (("torch_save", ".safetensors"), ("torch_save", ".pt")):
        torch.save(evil, folder / f"{stem}{suffix}")
        files[f"{stem}{suffix}"] = folder / f"{stem}{suffix}"
    torch.save(evil, folder / "torch_legacy.pt", _use_new_zipfile_serialization=False)
    files["torch_legacy.pt"] = folder / "torch_legacy.pt"
    return files


def test_the_payload_runs_when_unpickled(tmp_path):
    """The control: these files really would run code if anything unpickled them."""
    marker = tmp_path / "ran"
    files = write_pickles(tmp_path, marker)
    pickle.loads(files["raw_pickle.pt"].read_bytes())
    assert marker.exists()
    marker.unlink()
    torch.load(files["torch_save.pt"], weights_only=False)
    assert marker.exists()


def test_pickled_models_are_refused_everywhere_and_never_run(home):
    marker = home.root / "payload-ran"
    files = write_pickles(home.root, marker)
    for label, path in files.items():
        name = f"evil_{path.stem}_{path.suffix[1:]}"
        (home.models / f"{name}.safetensors").write_bytes(path.read_bytes())
        (home.presets / f"{name}.toml").write_text(f'model = "{name}"\n')
        problem = "can run code when loaded"
        message = refused(lambda: read_checkpoint(path), path, problem=problem)  # noqa: B023 - called at once
        refused(lambda: load_model(str(path)), path, problem=problem)  # noqa: B023 - called at once
        refused(lambda: load_model(name), name, problem=problem)  # by name, models folder  # noqa: B023 - called at once
        refused(lambda: resolve_look(name, None), name)  # a preset naming it  # noqa: B023 - called at once
        refused(lambda: look_for(name), name)  # what a control slot loads  # noqa: B023 - called at once
        assert not marker.exists()
        OUTCOMES[f"{label} (5 entry points)"] = f"refused: {message.split(': ', 1)[1]}"
    assert not marker.exists()


def cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `synd` in a subprocess; a hang fails on the timeout."""
    return subprocess.run(
        [sys.executable, "-m", "synd", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in proc.stderr, proc.stderr
    return [line for line in proc.stderr.splitlines() if "error" in line.lower()]


@pytest.mark.parametrize("label", ["raw_pickle.pt", "torch_save.safetensors", "torch_legacy.pt"])
def test_render_with_a_pickled_model_is_one_error_line(tmp_path, label):
    marker = tmp_path / "payload-ran"
    path = write_pickles(tmp_path, marker)[label]
    song = tmp_path / "song.wav"
    write_wav(song, music_clip(0, seconds=1.0), 24000)
    out = tmp_path / "out" / "clip.mp4"
    proc = cli("render", str(song), "-o", str(out), "--model", str(path), "--size", "64x48")
    errors = error_lines(proc)
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr
    assert errors[0].startswith("synd: error:") and path.name in errors[0]
    assert "only loads safetensors" in errors[0]
    assert not out.exists() and not out.parent.exists()
    assert not marker.exists()
    OUTCOMES[f"cli render --model {label}"] = f"exit 1: {errors[0].replace(str(tmp_path), '')}"


def test_info_lists_hostile_models_as_errors_without_running_or_hanging(tmp_path):
    """`synd info` reads every model in the models folder: pickles, a foreign file and a
    pipe named like a model are each one error entry, and nothing runs or blocks."""
    models = tmp_path / "data" / "synd" / "models"
    models.mkdir(parents=True)
    marker = tmp_path / "payload-ran"
    for label, path in write_pickles(tmp_path, marker).items():
        if path.suffix == ".safetensors":
            (models / label).write_bytes(path.read_bytes())
    save_file({"w": torch.zeros(3)}, models / "foreign.safetensors")
    os.mkfifo(models / "pipe.safetensors")
    make_tiny_bundle().save(models / "good.safetensors")
    proc = cli(
        "info",
        "--json",
        env={"XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")},
    )
    assert proc.returncode == 0, proc.stderr
    found = {m["name"]: m for m in json.loads(proc.stdout)["models"]}
    problems = {
        "raw_pickle": "can run code",
        "torch_save": "can run code",
        "pickle_protocol0": "can run code",
        "foreign": "not a synd model",
        "pipe": "not a regular file",
    }
    for name, problem in problems.items():
        assert problem in found[name]["error"] and "\n" not in found[name]["error"], found[name]
    assert "error" not in found["good"]
    assert not marker.exists()
    OUTCOMES["cli info (5 hostile models + 1 good)"] = "exit 0, each hostile model one error entry"


# -- damaged and foreign files ---------------------------------------------------------


@pytest.fixture
def good_file(tmp_path) -> Path:
    path = tmp_path / "model.safetensors"
    make_tiny_bundle().save(path)
    return path


def header_of(data: bytes) -> tuple[int, dict]:
    (n,) = struct.unpack("<Q", data[:8])
    return n, json.loads(data[8 : 8 + n])


def with_header(data: bytes, header: bytes | dict) -> bytes:
    """`data` with its header replaced (a dict is written as JSON)."""
    n, _ = header_of(data)
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data[8 + n :]


def damaged(data: bytes) -> dict[str, tuple[bytes, str]]:
    """name -> (file contents, the problem its error names)."""
    n, header = header_of(data)
    meta = header["__metadata__"]
    nested = dict(header, __metadata__={"synd": "[" * 100000 + "]" * 100000})
    first = next(k for k in header if k != "__metadata__")
    offsets = dict(header, **{first: dict(header[first], data_offsets=[0, 10**12])})
    dtype = dict(header, **{first: dict(header[first], dtype="Q99")})
    return {
        "cut_at_4": (data[:4], "truncated"),
        "cut_at_8": (data[:8], "header length"),
        "cut_in_header": (data[: 8 + n // 2], "header length"),
        "cut_after_header": (data[: 8 + n], "truncated"),
        "cut_in_tensors": (data[: 8 + n + (len(data) - 8 - n) // 2], "truncated"),
        "cut_last_byte": (data[:-1], "truncated"),
        "header_length_beyond_file": (struct.pack("<Q", len(data)) + data[8:], "header length"),
        "header_length_2^63": (struct.pack("<Q", 2**63) + data[8:], "header length"),
        "header_length_2^64-1": (b"\xff" * 8 + data[8:], "header length"),
        "header_not_json": (with_header(data, b"\x00garbage{" * 20), "corrupt safetensors header"),
        "header_a_list": (with_header(data, b"[1, 2, 3]"), "corrupt safetensors header"),
        "header_nested_100k": (
            with_header(data, b"[" * 100000 + b"]" * 100000),
            "corrupt safetensors header",
        ),
        "metadata_not_json": (
            with_header(data, dict(header, __metadata__={"synd": "{oops"})),
            "corrupt synd metadata",
        ),
        "metadata_nested_100k": (with_header(data, nested), "corrupt synd metadata"),
        "metadata_format_version_-1": (
            with_header(
                data,
                dict(
                    header,
                    __metadata__={"synd": json.dumps(dict(json.loads(meta["synd"]), format_version=-1))},
                ),
            ),
            "format version",
        ),
        "tensor_offsets_beyond_file": (with_header(data, offsets), "truncated"),
        "tensor_dtype_unknown": (with_header(data, dtype), "corrupt tensor data"),
        "random_bytes": (random.Random(0).randbytes(4096), "not a safetensors file"),
        "hdf5_magic": (b"\x89HDF\r\n\x1a\n" + bytes(100), "HDF5"),
        "text": (b"these are not the weights you are looking for\n" * 10, "not a safetensors"),
    }


DAMAGED = [
    "cut_at_4",
    "cut_at_8",
    "cut_in_header",
    "cut_after_header",
    "cut_in_tensors",
    "cut_last_byte",
    "header_length_beyond_file",
    "header_length_2^63",
    "header_length_2^64-1",
    "header_not_json",
    "header_a_list",
    "header_nested_100k",
    "metadata_not_json",
    "metadata_nested_100k",
    "metadata_format_version_-1",
    "tensor_offsets_beyond_file",
    "tensor_dtype_unknown",
    "random_bytes",
    "hdf5_magic",
    "text",
]


@pytest.mark.parametrize("case", DAMAGED)
def test_damaged_file_is_one_clear_error(good_file, case):
    cases = damaged(good_file.read_bytes())
    assert set(cases) == set(DAMAGED)
    contents, problem = cases[case]
    good_file.write_bytes(contents)
    message = refused(lambda: load_model(str(good_file)), good_file, problem=problem)
    OUTCOMES[case] = f"refused: {message.split(': ', 1)[1]}"


def test_flipped_header_bits_never_escape_as_other_errors(good_file):
    """Single bit flips all over the header: a clear error, or (for a flip inside a text
    value such as the model's name) a model that loads; never any other exception."""
    data = good_file.read_bytes()
    n, _ = header_of(data)
    rng = random.Random(7)
    positions = [0, 1, 7, 8, 9, 8 + n - 1] + rng.sample(range(8, 8 + n), 150)
    counts = {"refused": 0, "loaded": 0}
    for pos in positions:
        flipped = bytearray(data)
        flipped[pos] ^= 1 << rng.randrange(8)
        good_file.write_bytes(bytes(flipped))
        try:
            load_model(str(good_file))
            counts["loaded"] += 1
        except CheckpointError as e:
            assert "\n" not in str(e) and good_file.name in str(e)
            counts["refused"] += 1
    assert counts["refused"] > len(positions) // 2
    OUTCOMES[f"header bit flips ({len(positions)} files)"] = (
        f"{counts['refused']} refused with one line, {counts['loaded']} loaded "
        "(flips inside text values), no other error"
    )


def test_foreign_safetensors_files_are_not_models(tmp_path):
    cases = {
        "foreign_random_tensors": (
            {"encoder.layer.0.w": torch.randn(5, 7), "head.bias": torch.randn(3)},
            None,
        ),
        "foreign_with_metadata": ({"w": torch.zeros(2, 2)}, {"format": "pt"}),
        "foreign_synd_key_not_json": ({"w": torch.zeros(2)}, {"synd": "not json"}),
        "foreign_other_format": ({"w": torch.zeros(2)}, {"synd": json.dumps({"format": "x"})}),
    }
    for case, (tensors, metadata) in cases.items():
        path = tmp_path / f"{case}.safetensors"
        save_file(tensors, path, metadata=metadata)
        message = refused(
            lambda: load_model(str(path)),  # noqa: B023 - called at once
            path,
            problem="corrupt synd metadata" if "not_json" in case else "not a synd model",
        )
        OUTCOMES[case] = f"refused: {message.split(': ', 1)[1]}"


def test_things_that_are_not_files(tmp_path):
    (tmp_path / "folder.safetensors").mkdir()
    os.mkfifo(tmp_path / "pipe.safetensors")
    for name, problem in (
        ("folder.safetensors", "is a directory"),
        ("pipe.safetensors", "not a regular file"),
    ):
        path = tmp_path / name
        message = refused(lambda: read_checkpoint(path), path, problem=problem)  # noqa: B023 - called at once
        OUTCOMES[name] = f"refused: {message.split(': ', 1)[1]}"


# -- metadata that disagrees with the tensors ------------------------------------------


def width_bundle(width: int):
    """A small model `width` channels wide."""
    torch.manual_seed(0)
    features = FeatureConfig(bands=8)
    stats = FeatureStats(
        mean=np.full(features.dim, -5.0, np.float32), std=np.full(features.dim, 2.0, np.float32)
    )
    config = ModelConfig(feature_dim=features.dim, width=width, res_blocks=1, cond_dim=16, decoder_width=8)
    return ModelBundle.new(config, features, stats, meta={"name": f"w{width}"})


def disagreements() -> dict[str, tuple]:
    """name -> (change to the tensors, change to the metadata, the problem named)."""

    def meta_set(table, key, value):
        return lambda m: m[table].__setitem__(key, value)

    def tensors_set(key, value):
        return lambda t: t.__setitem__(key, value(t))

    w = "generator.stem_image.weight"
    return {
        "width_24_for_12_channel_weights": (
            None,
            meta_set("architecture", "width", 24),
            "has shape (12, 3, 3, 3), the architecture needs (24, 3, 3, 3)",
        ),
        "width_10^6_for_12_channel_weights": (
            None,
            meta_set("architecture", "width", 10**6),
            "the architecture needs (1000000,",
        ),
        "bands_disagree_with_stats": (None, meta_set("features", "bands", 16), "metadata disagrees"),
        "missing_tensor": (lambda t: t.pop(w), None, f"missing tensor {w}"),
        "extra_tensor_in_generator": (
            tensors_set("generator.extra.weight", lambda t: torch.zeros(3)),
            None,
            "unexpected tensor generator.extra.weight",
        ),
        "extra_foreign_tensor": (
            tensors_set("lora.up", lambda t: torch.zeros(3)),
            None,
            "unexpected tensor lora.up",
        ),
        "int32_weights": (tensors_set(w, lambda t: t[w].to(torch.int32)), None, f"tensor {w} has type int32"),
        "bool_weights": (tensors_set(w, lambda t: t[w] > 0), None, f"tensor {w} has type bool"),
        "architecture_a_list": (
            None,
            lambda m: m.__setitem__("architecture", [12, 1]),
            "architecture must be a table",
        ),
        "architecture_a_string": (
            None,
            lambda m: m.__setitem__("architecture", "big"),
            "architecture must be a table",
        ),
        "architecture_missing": (None, lambda m: m.pop("architecture"), "metadata lacks 'architecture'"),
        "width_a_string": (None, meta_set("architecture", "width", "12"), "bad metadata"),
        "width_negative": (None, meta_set("architecture", "width", -12), "bad metadata"),
        "normalization_a_number": (
            None,
            lambda m: m.__setitem__("normalization", 3),
            "normalization must be a table",
        ),
        "features_null": (None, lambda m: m.__setitem__("features", None), "features must be a table"),
    }


@pytest.mark.parametrize("case", list(disagreements()))
def test_metadata_that_disagrees_with_the_tensors(tmp_path, case):
    change_tensors, change_meta, problem = disagreements()[case]
    bundle = width_bundle(12)
    tensors, meta = bundle.state_tensors(), bundle.metadata()
    if change_tensors:
        change_tensors(tensors)
    if change_meta:
        change_meta(meta)
    path = tmp_path / f"{case}.safetensors"
    save_checkpoint(path, tensors, meta)
    message = refused(lambda: load_model(str(path)), path, problem=problem)
    assert "size mismatch" not in message
    OUTCOMES[case] = f"refused: {message.split(': ', 1)[1]}"


def test_unusual_but_sound_files_still_load(tmp_path):
    """Half-precision weights load (as float32), and a training-state file keeps its
    optimizer and chain tensors: the checks refuse only what is wrong."""
    bundle = width_bundle(12)
    half = {k: v.half() for k, v in bundle.state_tensors().items()}
    save_checkpoint(tmp_path / "half.safetensors", half, bundle.metadata())
    loaded = load_model(str(tmp_path / "half.safetensors"))
    assert loaded.generator.stem_image.weight.dtype == torch.float32
    assert torch.equal(loaded.generator.stem_image.weight, bundle.generator.stem_image.weight.half().float())
    bundle.save(
        tmp_path / "m.train.safetensors",
        extra={"pool.frames": torch.zeros(2, 3), "optim.0.step": torch.tensor(3.0)},
        extra_meta={"training": {"step": 3}},
    )
    assert load_model(str(tmp_path / "m.train.safetensors")).config == bundle.config
    OUTCOMES["float16_weights"] = "loaded, weights converted to float32"
    OUTCOMES["training_state_with_optim_and_pool"] = "loaded"


# -- presets ---------------------------------------------------------------------------


PRESETS = {
    "invalid_toml": ('name = "x"\nlook = [\n', "invalid TOML"),
    "nested_100k": ("a = " + "[" * 100000 + "]" * 100000 + "\n", "nested too deeply"),
    "not_utf8": (b'name = "\xff\xfe"\n', "not UTF-8"),
    "too_big": ("# padding\n" * 200000, "too big"),
    "model_a_list": ('model = ["prism"]\n', "model must be a string"),
    "name_a_number": ("name = 5\n", "name must be a string"),
    "look_a_string": ('look = "bright"\n', "[look] must be a table"),
    "architecture_a_number": ("architecture = 3\n", "[architecture] must be a table"),
    "model_../../etc/passwd": ('model = "../../etc/passwd"\n', "not a path"),
    "model_/etc/passwd": ('model = "/etc/passwd"\n', "not a path"),
    "model_..": ('model = ".."\n', "not a path"),
    "model_sub/prism": ('model = "sub/prism"\n', "not a path"),
    "model_backslash_path": ('model = "..\\\\prism"\n', "not a path"),
    "model_with_NUL": ('model = "prism\\u0000x"\n', "not a path"),
    "model_with_newline": ('model = "prism\\nx"\n', "not a path"),
    "model_empty": ('model = ""\n', "not a path"),
}


@pytest.mark.parametrize("case", list(PRESETS))
def test_bad_preset_files_are_refused(home, case):
    text, problem = PRESETS[case]
    path = home.presets / "bad.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    message = refused(lambda: load_preset(str(path)), path, PresetError, problem)
    refused(lambda: load_preset("bad"), path, PresetError, problem)  # by name
    refused(lambda: resolve_look("bad", None), path, PresetError, problem)  # render, eval
    errors: list[str] = []
    assert "bad" not in {p.name for p in list_presets(errors)}  # `synd presets`, `synd info`
    assert len(errors) == 1 and "\n" not in errors[0] and problem in errors[0]
    OUTCOMES[f"preset {case}"] = f"refused: {message.split(': ', 1)[1]}"


def test_a_pipe_in_the_presets_folder_does_not_hang_the_listing(home):
    os.mkfifo(home.presets / "pipe.toml")
    errors: list[str] = []
    assert {"lava", "tide"} <= {p.name for p in list_presets(errors)}
    assert len(errors) == 1 and "not a regular file" in errors[0]
    # By path it is not found at all: only regular files count as preset files.
    refused(lambda: load_preset(str(home.presets / "pipe.toml")), "pipe.toml", PresetError, "no preset file")
    OUTCOMES["preset pipe.toml (a FIFO)"] = "refused: not a regular file; listing goes on"


def test_render_refuses_a_preset_naming_a_model_by_path(tmp_path):
    preset = tmp_path / "sneaky.toml"
    preset.write_text('description = "looks fine"\nmodel = "/etc/passwd"\n')
    song = tmp_path / "song.wav"
    write_wav(song, music_clip(0, seconds=1.0), 24000)
    out = tmp_path / "clip.mp4"
    proc = cli("render", str(song), "-o", str(out), "--preset", str(preset))
    errors = error_lines(proc)
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr
    assert "sneaky.toml" in errors[0] and "not a path" in errors[0]
    assert not out.exists()
    OUTCOMES["cli render --preset sneaky.toml (model /etc/passwd)"] = "exit 1, one error line"


# -- names over OSC and MIDI -----------------------------------------------------------


class SlotEngine:
    """Stands in for the engine's control side: records the slot loads asked of it."""

    def __init__(self):
        from synd.presets import Look

        self.look, self.model_name, self.outputs, self.on_beat = Look(), "prism", [], None
        self.loads: list[str] = []

    def load_slot(self, slot, load, name):
        self.loads.append(name)

    def switch_to(self, load, name, seconds, done=None):
        self.loads.append(name)

    def mix_state(self):
        return {"crossfade": 0.0, "a": self.model_name, "b": None, "mix": "image"}


HOSTILE_NAMES = [
    "../../etc/passwd",
    "/etc/passwd",
    "..",
    ".",
    "prism/../prism",
    "../presets/prism",
    "..\\..\\prism",
    "~/x",
    "prism\x00",
    "a\x00/etc/passwd",
    "\x00",
    "prism\nx",
    "x" * 100000,
    "p" * 255 + ".toml",
    "",
]


def test_names_from_osc_and_midi_only_reach_the_model_and_preset_folders(home):
    """Every name a surface sends is checked against the presets and models found in
    their folders before anything is loaded: paths, `..`, NUL bytes and very long names
    never reach a loader."""
    make_tiny_bundle().save(home.models / "mine.safetensors")
    engine = SlotEngine()
    control = Controller(engine, [p.name for p in list_presets()], look_for, current="prism", models=choices)
    commands = Commands(control)
    for name in HOSTILE_NAMES:
        for address in ("/synd/preset", "/synd/model/a", "/synd/model/b"):
            with pytest.raises(ValueError) as err:
                commands.run(address, [name])  # OSC
            assert "\n" not in str(err.value)
        with pytest.raises(ValueError):
            control.select_preset(name)  # what a MIDI pad bound to preset/NAME calls
    assert engine.loads == []
    commands.run("/synd/model/b", ["mine"])  # the control: a listed name does get through
    commands.run("/synd/preset", ["lava"])
    assert engine.loads == ["mine", "lava"]
    OUTCOMES[f"OSC/MIDI names ({len(HOSTILE_NAMES)} hostile, x4 routes)"] = (
        "all refused before any load; listed names load"
    )
