"""An independent NDI receiver for the ndi output's tests, built on cyndilib (its own
Cython wrapper and its own copy of the NDI runtime), not on ndi-python as the sender is.

    python tests/helpers/ndi_receiver.py --name NAME --seconds S [--format bgra|uyva]
                                         [--save FILE.npz] [--max-save N]

Finds the source whose name ends in "(NAME)" (NDI lists sources as "HOST (NAME)"),
connects, and watches it for S seconds after the first frame. Prints JSON lines on
stdout: {"event": "found", ...}, {"event": "frame", ...} for the first frame, and a last
{"event": "done", ...} with what was received. With --save, the first N distinct frames
(BGRA, as received) go to FILE.npz with their timecodes.

cyndilib's Receiver always puts an NDI frame synchronizer on the connection (its
``frame_sync``), which takes the frames off the receive queue: reading with
``Receiver.receive`` then sees only some of them. So frames are read the way cyndilib
means them to be, with ``frame_sync.capture_video()`` polled every few milliseconds;
it returns the newest frame, and a new frame is told from a repeated one by NDI's
send timestamp, which the sender's runtime sets for every frame it sends. The rate is
the number of distinct frames over the time between the first and the last.

Pixels: with --format bgra (default) NDI's runtime converts frames to BGRA, as most
receiving programs ask for them. Its YUV -> BGRA conversion is a little off on blue
(measured here: a sent pure blue 255 comes back as 239-240, grey 128 as B 125), so
--format uyva asks for the 4:2:2 samples as sent (UYVA: UYVY plus an alpha plane) and
converts them here with BT.709, the matrix NDI's sender uses (a sent pure blue comes
back as 252); content comparisons use that.

Discovery follows the NDI configuration in NDI_CONFIG_DIR (the tests point it at
127.0.0.1 and run everything in a loopback-only network namespace). SIGTERM ends the
watch early; the summary is still printed.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

import numpy as np


def to_bgra(data: np.ndarray, fourcc: str, w: int, h: int, stride: int) -> np.ndarray:
    """One received frame as (h, w, 4) BGRA.

    BGRA/BGRX: as NDI converted it. UYVY/UYVA (the wire's own 4:2:2 samples, what
    --format uyva asks for): converted here with BT.709 in limited range, the matrix NDI
    encodes HD and SD BGRA with, odd pixels' chroma interpolated between the even
    pixels' (co-sited) samples; UYVA's alpha plane follows the UYVY plane.
    """
    if fourcc in ("BGRA", "BGRX"):
        stride = stride or w * 4
        return data[: h * stride].reshape(h, stride)[:, : w * 4].reshape(h, w, 4)
    if fourcc not in ("UYVY", "UYVA"):
        raise ValueError(f"cannot read {fourcc} frames")
    stride = stride or w * 2
    packed = data[: h * stride].reshape(h, stride)[:, : w * 2].reshape(h, w // 2, 4).astype(np.float32)
    u, y0, v, y1 = (packed[..., k] for k in range(4))
    y = np.empty((h, w), np.float32)
    y[:, 0::2], y[:, 1::2] = y0, y1

    def full(c: np.ndarray) -> np.ndarray:
        out = np.empty((h, w), np.float32)
        out[:, 0::2] = c
        out[:, 1::2] = (c + np.concatenate([c[:, 1:], c[:, -1:]], axis=1)) / 2
        return out

    kr, kb = 0.2126, 0.0722
    luma = (y - 16) * (255 / 219)
    cb, cr = (full(u) - 128) * (255 / 224), (full(v) - 128) * (255 / 224)
    r = luma + 2 * (1 - kr) * cr
    b = luma + 2 * (1 - kb) * cb
    g = (luma - kr * r - kb * b) / (1 - kr - kb)
    bgra = np.empty((h, w, 4), np.uint8)
    bgra[..., :3] = np.clip(np.rint(np.stack([b, g, r], axis=-1)), 0, 255)
    if fourcc == "UYVA":
        bgra[..., 3] = data[h * stride : h * stride + h * w].reshape(h, w)
    else:
        bgra[..., 3] = 255
    return bgra


def emit(event: str, **fields) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True, help="match the source 'HOST (NAME)'")
    p.add_argument("--seconds", type=float, default=3.0, help="watch this long after the first frame")
    p.add_argument("--find-timeout", type=float, default=20.0)
    p.add_argument("--save", help="write received frames and timecodes to this .npz")
    p.add_argument("--max-save", type=int, default=60)
    p.add_argument("--poll", type=float, default=0.003, help="seconds between frame-sync reads")
    p.add_argument(
        "--format",
        choices=["bgra", "uyva"],
        default="bgra",
        help="bgra: NDI converts to BGRA; uyva: the 4:2:2 samples, converted here",
    )
    args = p.parse_args(argv)

    stop = False

    def on_term(signum, frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)

    from cyndilib.finder import Finder
    from cyndilib.receiver import Receiver
    from cyndilib.video_frame import VideoFrameSync
    from cyndilib.wrapper.ndi_recv import RecvBandwidth, RecvColorFormat

    suffix = f"({args.name})"
    began = time.monotonic()
    finder = Finder()
    finder.open()
    try:
        source = None
        while source is None and not stop and time.monotonic() - began < args.find_timeout:
            finder.wait_for_sources(0.25)
            for name in finder.get_source_names():
                if name.endswith(suffix):
                    source = finder.get_source(name)
                    break
        if source is None:
            emit(
                "done",
                error=f"no NDI source '... {suffix}' within {args.find_timeout} s",
                seen=finder.get_source_names(),
                frames=0,
            )
            return 2
        emit("found", source=source.name, after=round(time.monotonic() - began, 3))

        color = RecvColorFormat.BGRX_BGRA if args.format == "bgra" else RecvColorFormat.fastest
        receiver = Receiver(
            color_format=color, bandwidth=RecvBandwidth.highest, recv_name="synd-test-receiver"
        )
        video = VideoFrameSync()
        receiver.frame_sync.set_video_frame(video)
        receiver.connect_to(source)

        arrivals: list[float] = []  # monotonic time each distinct frame was first seen
        timecodes: list[int] = []
        sizes: set[tuple[int, int]] = set()
        rates: set[tuple[int, int]] = set()
        fourccs: set[str] = set()
        alpha_min, alpha_max = 255, 0
        saved_frames: list[np.ndarray] = []
        saved_timecodes: list[int] = []
        last_stamp = None
        deadline = None
        while not stop:
            now = time.monotonic()
            if deadline is None and now - began > args.find_timeout + 10:
                break  # connected but never a frame
            if deadline is not None and now >= deadline:
                break
            receiver.frame_sync.capture_video()
            if video.get_data_size() > 0 and min(video.get_resolution()) > 0:
                stamp = round(video.get_timestamp_posix() * 1e7)
                if stamp != last_stamp:
                    last_stamp = stamp
                    w, h = video.get_resolution()
                    fourcc = video.get_fourcc().name
                    stride = video.get_line_stride()
                    # Copy, and let go of the buffer view before the next capture:
                    # cyndilib refuses to write a frame into a buffer still viewed.
                    with memoryview(video) as view:
                        data = np.frombuffer(view, np.uint8).copy()
                    pixels = to_bgra(data, fourcc, w, h, stride)
                    tc = round(video.get_timecode_posix() * 1e7)
                    rate = video.get_frame_rate()
                    arrivals.append(now)
                    timecodes.append(tc)
                    sizes.add((w, h))
                    rates.add((rate.numerator, rate.denominator))
                    fourccs.add(fourcc)
                    alpha = pixels[..., 3]
                    alpha_min = min(alpha_min, int(alpha.min()))
                    alpha_max = max(alpha_max, int(alpha.max()))
                    if args.save and len(saved_frames) < args.max_save:
                        saved_frames.append(pixels)
                        saved_timecodes.append(tc)
                    if deadline is None:
                        deadline = now + args.seconds
                        emit("frame", width=w, height=h, timecode=tc, after=round(now - began, 3))
            time.sleep(args.poll)

        span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
        if args.save:
            frames = np.stack(saved_frames) if saved_frames else np.zeros((0, 0, 0, 4), np.uint8)
            np.savez(args.save, frames=frames, timecodes=np.array(saved_timecodes, np.int64))
        emit(
            "done",
            frames=len(arrivals),
            seconds=round(span, 3),
            rate=round((len(arrivals) - 1) / span, 2) if span > 0 else 0.0,
            sizes=sorted(sizes),
            frame_rates=sorted(rates),
            fourccs=sorted(fourccs),
            alpha_min=alpha_min,
            alpha_max=alpha_max,
            timecodes_monotonic=all(b >= a for a, b in zip(timecodes, timecodes[1:])),
            saved=len(saved_frames),
            stopped=stop,
        )
        receiver.disconnect()
        return 0 if arrivals else 3
    finally:
        finder.close()


if __name__ == "__main__":
    sys.exit(main())
