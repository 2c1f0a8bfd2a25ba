"""How quickly the control window follows a change made over OSC.

Runs a tiny engine with an OSC server in this process, opens the control window
(offscreen) once through the in-process link and once attached over OSC, sends 40
intensity changes from a plain UDP socket and prints the time until the slider shows
each one. Run from the repository: .venv/bin/python scripts/window_follow.py
"""

import os
import socket
import statistics
import sys
import tempfile
import time

os.environ["QT_QPA_PLATFORM"] = "offscreen"
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from PyQt6.QtWidgets import QApplication  # noqa: E402

from synd.audio import write_wav  # noqa: E402
from synd.link import LocalLink, OscLink  # noqa: E402
from synd.osc import OscServer  # noqa: E402
from synd.window import ControlWindow  # noqa: E402

from conftest import make_tiny_bundle, music_clip  # noqa: E402
from test_osc import osc  # noqa: E402
from test_window import Show  # noqa: E402


def main() -> None:
    app = QApplication([])
    song = os.path.join(tempfile.mkdtemp(), "song.wav")
    write_wav(song, music_clip(5, seconds=4.0), 24000)
    show = Show(make_tiny_bundle(), song)
    show.start()
    server = OscServer(show.control, port=0)
    server.start()
    port = server.address[1]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for kind in ("local", "osc"):
        link = LocalLink(show) if kind == "local" else OscLink("127.0.0.1", port)
        window = ControlWindow(link)
        link.start()
        window.show()
        settle = time.monotonic()
        while time.monotonic() - settle < 2:  # the attached link's first snapshot
            app.processEvents()
            time.sleep(0.005)
        delays = []
        for i in range(40):
            value = 0.2 + (i % 2) * 0.5 + i * 0.01
            sent = time.monotonic()
            sock.sendto(osc("/synd/intensity", value), ("127.0.0.1", port))
            while window.intensity.value() != round(value * 100) and time.monotonic() - sent < 3:
                app.processEvents()
                time.sleep(0.0005)
            delays.append((time.monotonic() - sent) * 1000)
            time.sleep(0.05)
        print(f"{kind}: median {statistics.median(delays):.1f} ms, max {max(delays):.1f} ms "
              f"over {len(delays)} changes")
        link.stop()
        window.close()
    server.stop()
    show.stop()


if __name__ == "__main__":
    main()
