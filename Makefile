# One-command set-up: every target creates .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is installed first and pinned so pip takes this machine's local wheels
# instead of downloading a multi-GB CUDA build; override on other machines.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
# The main job's data: $CATDOG_DATA, else the shared photos beside the clone
# when present, else catdog_sk downloads the public PetImages set once.
CATDOG_DATA ?= $(if $(wildcard ../shared/data/catsdogs/train),../shared/data/catsdogs,)
# Photos of neither cats nor dogs for the "unknown" presence model: half trains it, half is reported on.
CATDOG_NEGATIVES ?= $(if $(wildcard ../shared/data/animals10),../shared/data/animals10,)
export CATDOG_DATA CATDOG_NEGATIVES

.PHONY: venv browser demo test bench clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check $(TORCH_SPEC)
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev]"
	@touch $@

venv: $(VENV)/.installed

demo: venv
	$(PY) -m catdog_sk.extract --features hog,color,dense,texture,cnn
	$(PY) -m catdog_sk.fit --model all

# The browser tests drive Debian's chromium through chromium-driver; install them when missing
# (needs root or sudo; nothing is downloaded by the test tools themselves).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver; }

test: venv browser
	$(PY) -m pytest

bench: venv
	$(PY) benchmarks/bench_extract.py
	$(PY) benchmarks/bench_classic.py
	$(PY) benchmarks/bench_cnn.py
	$(PY) benchmarks/bench_memory_latency.py
	$(PY) benchmarks/bench_monitor.py

clean:
	rm -rf $(VENV) artifacts/cache artifacts/models artifacts/reports
