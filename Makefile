# covermill: `make demo` and `make test` do all set-up on a fresh Debian machine.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
# Every pip call in this project uses our constraints file (torch/torchvision pinned as a pair).
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages the tests use: ffmpeg decodes containers libsndfile cannot (m4a/aac);
# rubberband-cli is the command line behind the alternate pyrubberband stretcher;
# chromium loads the HTML report headless; fluidsynth + fluid-soundfont-gm render MIDI
# re-voiced stems (FluidR3 General MIDI soundfont); audacity + xvfb (+ xauth) run the
# Audacity tests against a real Audacity on a virtual display; openssh-server is the SFTP endpoint of
# tests/remote (sshd started by the test on loopback).
TEST_DEBS := ffmpeg rubberband-cli chromium fluidsynth fluid-soundfont-gm musescore-general-soundfont audacity xvfb xauth openssh-server

# Debian packages only the benchmarks use (FluidSynth renders the stem benchmark's material).
BENCH_DEBS := fluidsynth fluid-soundfont-gm musescore-general-soundfont

.PHONY: demo test bench bench-audacity models lint sysdeps benchdeps install clean

$(VENV)/.torch:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, as a pinned pair: these builds are on the local wheel store
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	touch $@

$(VENV)/.installed: $(VENV)/.torch pyproject.toml constraints.txt
	$(BIN)/pip install -q -e '.[test,cnn,demucs,magenta,remote]'
	# tf_keras (Keras 2) only for tests/instruments/test_magenta.py, which writes checkpoints with the layer
	# layout ddsp trained with; without its `tensorflow` requirement (tensorflow-cpu, above, is that module)
	$(BIN)/pip install -q --no-deps tf_keras==2.21.0
	# basic-pitch without its TensorFlow pin (tensorflow<2.15.1 on Linux/3.11): we run its shipped
	# ONNX model with onnxruntime; its light deps (onnxruntime, pretty_midi, mir_eval, resampy) are ours
	$(BIN)/pip install -q --no-deps basic-pitch==0.4.0
	touch $@

install: $(VENV)/.installed
	@# an editable install leaves covermill's own modules without bytecode, and where PYTHONDONTWRITEBYTECODE
	@# is set no run writes it: every process would compile ~120 modules again (0.6 CPU-s per start)
	@$(BIN)/python -m compileall -q covermill >/dev/null

define apt_install
	@missing=""; for pkg in $(1); do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

sysdeps:
	$(call apt_install,$(TEST_DEBS))

benchdeps:
	$(call apt_install,$(BENCH_DEBS))

demo: install
	$(BIN)/covermill render examples/lets_go_fishin.ogg --recipe pop_to_jazz -o out/demo

test: install sysdeps
	$(BIN)/python -m pytest -q

bench: install benchdeps
	$(BIN)/python bench/bench_render.py --write docs/BENCHMARKS.md
	$(BIN)/python bench/bench_stems.py --write docs/BENCHMARKS.md
	$(BIN)/python bench/bench_cold.py --repeat 2 --write docs/BENCHMARKS.md

models: install
	$(BIN)/python bench/make_models.py

bench-audacity: install sysdeps
	$(BIN)/python bench/bench_audacity.py --write docs/BENCHMARKS.md

lint: install
	$(BIN)/ruff check covermill tests bench

clean:
	rm -rf out .pytest_cache build *.egg-info
