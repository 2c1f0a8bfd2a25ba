#!/usr/bin/env bash
# One-time set-up for `make run` / `make test` on Debian or Ubuntu:
# system packages (when root; if another apt or dpkg holds the lock, it waits up to 10
# minutes, see scripts/apt_lock.sh), a virtual environment in .venv, the pinned CPU
# torch, and synd itself (editable) with its test, live-capture, preview-window, NDI and
# virtual-camera extras.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
# torch is pinned here, not in pyproject.toml (which allows any torch>=2.4): 2.13.0 is
# the CPU build this project is measured on, and an unpinned install may pull a
# multi-GB CUDA build. Where pip has no local CPU wheel, point TORCH_INDEX_URL at
# PyTorch's CPU package index to get the CPU build instead of the CUDA one.
TORCH_PIN=${TORCH_PIN:-torch==2.13.0}
TORCH_INDEX_URL=${TORCH_INDEX_URL:-}
# Debian packages: PortAudio for audio capture, PulseAudio and JACK servers, sox,
# the X/Qt libraries for the preview window and tray tests, Avahi's client library that
# the NDI runtime loads, and iproute2/util-linux (ip, unshare) for the NDI tests'
# loopback-only network namespace, and for the control tests a JACK server (MIDI) and
# liblo's oscsend/oscdump (an independent OSC implementation), and for the tray tests an X
# server, a system tray, X input and screenshots (xvfb, trayer, xdotool, imagemagick).
APT_PACKAGES=(make python3 python3-venv libportaudio2 libasound2-plugins pulseaudio pulseaudio-utils sox
  libegl1 libgl1 libfontconfig1 libxkbcommon0 libdbus-1-3 libglib2.0-0 libxcb-cursor0
  libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0
  libxcb-shape0 libx11-xcb1 libavahi-client3 iproute2 util-linux jackd2 liblo-tools
  libxcb-xinerama0 x11-utils xvfb trayer xdotool imagemagick)

missing=()
if command -v dpkg-query >/dev/null; then
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
fi
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Another apt or dpkg (unattended-upgrades, just after boot) may hold the lock: wait
    # for it, saying so, up to SYND_APT_WAIT seconds (10 minutes), instead of failing.
    source scripts/apt_lock.sh
    wait_for_apt_lock
    apt-get -o DPkg::Lock::Timeout="$apt_lock_left" update -qq
    wait_for_apt_lock
    apt-get -o DPkg::Lock::Timeout="$apt_lock_left" install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  else
    echo "setup: please install these packages first (needs root): ${missing[*]}" >&2
  fi
fi

# A venv left half-made (no pip: python3-venv was missing) is rebuilt.
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  echo "setup: $VENV is broken (no pip); recreating it"
  rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
if [ -n "$TORCH_INDEX_URL" ]; then
  "$VENV/bin/python" -m pip install -q "$TORCH_PIN" --index-url "$TORCH_INDEX_URL"
else
  "$VENV/bin/python" -m pip install -q "$TORCH_PIN"
fi
"$VENV/bin/python" -m pip install -q -e '.[dev,live,preview,ndi,virtualcam]'
echo "setup: ready ($("$VENV/bin/python" -c 'import torch; print("torch", torch.__version__)'))"
