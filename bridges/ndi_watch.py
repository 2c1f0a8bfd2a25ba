"""A minimal NDI monitor: find a source by name, receive it, report what arrived.

    python -m synd.bridges.ndi_watch NAME [--seconds S] [--timeout T]

Checks that synd's NDI source is visible and how fast it arrives, without a VJ program;
`synd bench ndi` runs it as the receiver (NDI only compresses and sends frames while a
receiver is connected, so a benchmark without one would measure nothing). NDI lists
sources as "HOST (NAME)": the first source whose name ends in "(NAME)" is used. Prints
one JSON line: {"source", "frames", "fps", "size"}; exits 1 when no source was found.

Built on ndi-python's receive API (find_create_v2, find_get_current_sources,
recv_create_v3, recv_connect, recv_capture_v2, recv_free_video_v2), as its examples use it.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time


def find_source(lib, name: str, timeout: float):
    """The NDI source whose name ends in "(name)", or None after `timeout` seconds."""
    finder = lib.find_create_v2()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lib.find_wait_for_sources(finder, 500)
            for source in lib.find_get_current_sources(finder):
                if source.ndi_name.endswith(f"({name})"):
                    return source
        return None
    finally:
        lib.find_destroy(finder)


def watch(name: str, seconds: float, timeout: float = 15.0) -> dict:
    """Receive source `name` for `seconds` after its first frame; frames, fps and size."""
    import NDIlib as lib

    if not lib.initialize():
        raise RuntimeError("the NDI runtime did not initialize")
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    try:
        source = find_source(lib, name, timeout)
        if source is None:
            return {"source": None, "frames": 0, "fps": 0.0, "size": None}
        create = lib.RecvCreateV3()
        create.color_format = lib.RECV_COLOR_FORMAT_BGRX_BGRA
        receiver = lib.recv_create_v3(create)
        try:
            lib.recv_connect(receiver, source)
            frames, first, last, size = 0, None, None, None
            deadline = time.monotonic() + timeout
            while not stop["now"] and time.monotonic() < deadline:
                kind, video, _, _ = lib.recv_capture_v2(receiver, 200)
                if kind != lib.FRAME_TYPE_VIDEO:
                    continue
                now = time.monotonic()
                size = [video.xres, video.yres]
                lib.recv_free_video_v2(receiver, video)
                if first is None:
                    first, deadline = now, now + seconds
                    continue
                frames, last = frames + 1, now
            fps = 0.0
            if frames and first is not None and last is not None and last > first:
                fps = frames / (last - first)
            return {"source": source.ndi_name, "frames": frames, "fps": round(fps, 1), "size": size}
        finally:
            lib.recv_destroy(receiver)
    finally:
        lib.destroy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m synd.bridges.ndi_watch", description=__doc__.splitlines()[0]
    )
    parser.add_argument("name", help="the source name (synd's --ndi-name; default synd)")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to watch")
    parser.add_argument("--timeout", type=float, default=15.0, help="how long to look for it")
    args = parser.parse_args(argv)
    result = watch(args.name, args.seconds, args.timeout)
    print(json.dumps(result), flush=True)
    return 0 if result["source"] else 1


if __name__ == "__main__":
    sys.exit(main())
