# Two commands do everything: `make run` and `make test` (each sets up first).
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.synd-setup
DEMO   := demo

.PHONY: setup run demo test lint models music looks screenshots clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $@

## run: set up, then start the live daemon with the default model: system audio (or, with
## no audio device, the demo song in a loop) to the preview window and the NDI source
## `synd`; with no display, to NDI and also a recording in ~/.local/share/synd/recordings/
## (about 45 MB a minute, no size limit; one log line names the file and the NDI source);
## Ctrl-C stops it and finishes the file
run: setup
	$(BIN)/synd run

## demo: set up, then render a music video of a synthesized demo song
demo: setup
	$(BIN)/python -m synd.corpus --demo $(DEMO)/demo-song.flac
	$(BIN)/synd render $(DEMO)/demo-song.flac -o $(DEMO)/demo-song.mp4
	@echo "open $(DEMO)/demo-song.mp4"

## lint: set up, then lint (ruff), check the formatting (ruff format) and the types (mypy,
## through scripts/typecheck.py, which checks bridges/ as synd.bridges)
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/typecheck.py

## test: set up, lint, then run the whole test suite (a suite that collects no test fails)
test: setup lint
	@$(BIN)/python -m pytest -q -ra; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

## screenshots: set up, then retake the README's control-window screenshot (under Xvfb)
screenshots: setup
	SYND_SCREENSHOT_DIR=docs $(BIN)/python -m pytest -q tests/test_tray.py -k photographed

## models: retrain every shipped model from the synthesized corpus (about 10 min each on 2 cores)
models: setup
	bash scripts/train_shipped.sh

## music: set up, then fetch freely licensed real music from Debian packages into
## data/music: eval (held out: no look is trained or tuned on it) and train
music: setup
	$(BIN)/python -m synd.music eval data/music/eval
	$(BIN)/python -m synd.music train data/music/train

## looks: set up, then score every shipped look with the judge on the held-out music
looks: setup
	bash scripts/judge_looks.sh

clean:
	rm -rf $(VENV) build *.egg-info $(DEMO) .mypy_cache .ruff_cache
