# covermill: `make demo` and `make test` do all set-up on a fresh Debian machine.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
# Every pip call in this project uses our constraints file (torch/torchvision pinned as a pair).
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages the tests use: ffmpeg decodes containers libsndfile cannot (m4a/aac).
TEST_DEBS := ffmpeg
# Debian packages only the benchmarks use: FluidSynth + a GM soundfont render the stem benchmark's material.
BENCH_DEBS := fluidsynth fluid-soundfont-gm

.PHONY: demo test bench lint sysdeps benchdeps install clean

$(VENV)/.torch:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, as a pinned pair: these builds are on the local wheel store
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	touch $@

$(VENV)/.installed: $(VENV)/.torch pyproject.toml constraints.txt
	$(BIN)/pip install -q -e '.[test,demucs]'
	touch $@

install: $(VENV)/.installed

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

lint: install
	$(BIN)/ruff check covermill tests bench

clean:
	rm -rf out .pytest_cache build *.egg-info
