"""Real recorded music from freely licensed Debian packages, cut into excerpts.

Two sets that never mix: ``eval`` is music no shipped look is trained or tuned on (the
judge scores looks on it), ``train`` is what looks may learn from. Each package is
fetched with ``apt-get download`` (no installation, no root needed for the download
itself), unpacked with ``dpkg-deb -x``, and every song cut to one excerpt of
``--seconds`` (40 s) from a quarter of the way in, written as FLAC (44.1 kHz stereo).
The package's copyright file is kept beside the excerpts, and ``music.json`` lists
each excerpt's package, version, licence, source file and start.

    python -m synd.music eval data/music/eval
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from synd.audio import AUDIO_SUFFIXES

log = logging.getLogger(__name__)

RATE = 44100


@dataclass(frozen=True)
class Package:
    """A Debian package with music: its licence, and which files are songs."""

    name: str
    licence: str
    kind: str  # what the music is, for people
    stems: tuple[str, ...] = ()  # files of one song that are mixed (multitrack songs)
    folder: str = ""  # only files below a folder of this name (not sound effects)


#: Held-out music: judged on, never trained or tuned on.
EVAL = (
    Package(
        "fretsonfire-songs-sectoid",
        "MIT/Expat (Carlos Viola Iborra)",
        "rock and metal, multitrack (backing, guitar and rhythm mixed)",
        stems=("song.ogg", "guitar.ogg", "rhythm.ogg"),
    ),
    Package("asc-music", "GPL-2+ (Michael Kievernagel)", "orchestral and electronic game score"),
)
#: Music that looks may be trained on.
TRAIN = (
    Package("hedgewars-data", "GPL-2 (the Hedgewars project)", "game music", folder="Music"),
    Package("supertux-data", "GPL-2+ (data/music: Marek Moeckel and others)", "game music", folder="music"),
    Package("warzone2100-music", "GPL-2+ (the Warzone 2100 project)", "game score", folder="music"),
    Package("xmoto-data", "GPL-2+ (the X-Moto project)", "game music", folder="Musics"),
)
SETS = {"eval": EVAL, "train": TRAIN}


def _run(command: list[str], cwd: Path) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise RuntimeError(f"{' '.join(command)}: {last}")
    return done.stdout


def fetch(package: Package, work: Path) -> tuple[Path, str]:
    """Download and unpack `package` into `work`; returns (unpacked root, version)."""
    _run(["apt-get", "download", package.name], work)
    deb = max(work.glob(f"{package.name}_*.deb"))
    version = deb.name.split("_")[1]
    root = work / package.name
    _run(["dpkg-deb", "-x", str(deb), str(root)], work)
    deb.unlink()
    return root, version


def songs(package: Package, root: Path) -> list[list[Path]]:
    """The songs in an unpacked package, each as the files to mix (one, or its stems)."""
    files = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in AUDIO_SUFFIXES
        and p.is_file()
        and (not package.folder or package.folder in p.relative_to(root).parts)
    )
    if not package.stems:
        return [[p] for p in files]
    folders = sorted({p.parent for p in files if p.name in package.stems})
    return [[f / s for s in package.stems if (f / s).is_file()] for f in folders]


def excerpt(parts: list[Path], seconds: float) -> tuple[np.ndarray, float] | None:
    """`seconds` of the mixed parts from a quarter of the way in; None for a short song."""
    from synd.audio import load_audio

    tracks = [load_audio(p, RATE, stereo=True) for p in parts]
    length = min(len(t) for t in tracks)
    need = int(seconds * RATE)
    if length < need:
        return None
    mix = cast(np.ndarray, sum(t[:length].astype(np.float64) for t in tracks))  # parts is never empty
    peak = float(np.abs(mix).max()) or 1.0
    start = min(length // 4, length - need)
    piece = mix[start : start + need] / max(1.0, peak / 0.98)  # stems summed may clip
    return piece.astype(np.float32), start / RATE


def build(which: str, out: Path, seconds: float = 40.0, packages: tuple[Package, ...] | None = None) -> Path:
    """Fetch the `which` set (or just `packages`) and write its excerpts and music.json
    to `out`."""
    from synd.corpus import write_audio

    out.mkdir(parents=True, exist_ok=True)
    listing: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="synd-music-") as tmp:
        for package in packages if packages is not None else SETS[which]:
            log.info("fetching %s", package.name)
            root, version = fetch(package, Path(tmp))
            copyright_file = next(root.glob("usr/share/doc/*/copyright"), None)
            if copyright_file is not None:
                shutil.copyfile(copyright_file, out / f"{package.name}.copyright")
            for parts in songs(package, root):
                cut = excerpt(parts, seconds)
                if cut is None:
                    log.info("  %s: shorter than %g s, left out", parts[0].parent.name, seconds)
                    continue
                samples, start = cut
                song = parts[0].parent.name if package.stems else parts[0].stem
                name = f"{package.name}--{song}".replace(" ", "_").lower() + ".flac"
                if (out / name).exists() and any(e["file"] == name for e in listing):
                    name = name.replace("--", f"--{parts[0].parent.name.lower()}-", 1)
                write_audio(out / name, samples, RATE)
                listing.append(
                    {
                        "file": name,
                        "package": package.name,
                        "version": version,
                        "licence": package.licence,
                        "kind": package.kind,
                        "source": [str(p.relative_to(root)) for p in parts],
                        "start_s": round(start, 2),
                        "seconds": seconds,
                    }
                )
                log.info("  %s", name)
            shutil.rmtree(root)
    manifest = out / "music.json"
    from synd.files import write_json

    write_json({"set": which, "excerpts": listing}, manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m synd.music", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("set", choices=sorted(SETS), help="eval (held out) or train")
    parser.add_argument("out", type=Path, help="folder for the excerpts and music.json")
    parser.add_argument("--seconds", type=float, default=40.0, help="excerpt length (default 40)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        manifest = build(args.set, args.out, args.seconds)
    except (RuntimeError, OSError) as e:
        print(f"synd.music: error: {e}", file=sys.stderr)
        return 1
    count = len(json.loads(manifest.read_text())["excerpts"])
    print(f"{count} excerpts in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
