"""How quickly the control window follows a change made over OSC.

Runs a tiny engine with an OSC server in this process, opens the control window
(offscreen) once through the in-process link and once attached over OSC, sends 40
intensity changes from a plain UDP socket and prints the time until the slider shows
each one. Run from the repository: .venv/bin/python scripts/window_follow.py
"""
import os, sys, time, socket, statistics, tempfile
os.environ["QT_QPA_PLATFORM"] = "offscreen"
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import numpy as np, torch
from PyQt6.QtWidgets import QApplication
from synd.audio import write_wav
from synd.bundle import ModelBundle
from synd.features import FeatureConfig, FeatureStats
from synd.model import ModelConfig
from conftest import music_clip
from test_window import Show
from test_osc import osc
from synd.link import LocalLink, OscLink
from synd.osc import OscServer
from synd.window import ControlWindow

app = QApplication([])
SONG = os.path.join(tempfile.mkdtemp(), "song.wav")
torch.manual_seed(0)
features = FeatureConfig(bands=8)
stats = FeatureStats(mean=np.full(features.dim, -5.0, np.float32), std=np.full(features.dim, 2.0, np.float32))
config = ModelConfig(feature_dim=features.dim, width=4, res_blocks=1, cond_dim=16, decoder_width=8)
bundle = ModelBundle.new(config, features, stats, meta={"name": "tiny"})
write_wav(SONG, music_clip(5, seconds=4.0), 24000)
show = Show(bundle, SONG); show.start()
server = OscServer(show.control, port=0); server.start()
port = server.address[1]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for kind in ("local", "osc"):
    link = LocalLink(show) if kind == "local" else OscLink("127.0.0.1", port)
    w = ControlWindow(link); link.start(); w.show()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 2: app.processEvents(); time.sleep(0.005)
    delays = []
    for i in range(40):
        v = 0.2 + (i % 2) * 0.5 + i * 0.01
        target = round(v * 100)
        t = time.monotonic()
        sock.sendto(osc("/synd/intensity", v), ("127.0.0.1", port))
        while w.intensity.value() != target:
            app.processEvents(); time.sleep(0.0005)
            if time.monotonic() - t > 3: break
        delays.append((time.monotonic() - t) * 1000)
        time.sleep(0.05)
    print(kind, "median %.1f ms, max %.1f ms over %d changes" % (statistics.median(delays), max(delays), len(delays)))
    link.stop(); w.close()
server.stop(); show.stop()
