# One-command set-up: every target creates .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is installed first, pinned to the versions this project is tested with. From PyPI that is the
# CUDA build (the venv weighs 6.6 GB, 4.1 GB of it CUDA libraries and triton); on a machine without a GPU,
# `make venv TORCH_INDEX=https://download.pytorch.org/whl/cpu` takes PyTorch's CPU build instead.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
TORCH_INDEX ?=
# The main job's data: $CATDOG_DATA, else the shared photos beside the clone
# when present, else catdog_sk downloads the public PetImages set once.
CATDOG_DATA ?= $(if $(wildcard ../shared/data/catsdogs/train),../shared/data/catsdogs,)
# Photos of neither cats nor dogs for the "unknown" presence model: half trains it, half is reported on.
CATDOG_NEGATIVES ?= $(if $(wildcard ../shared/data/animals10),../shared/data/animals10,)
export CATDOG_DATA CATDOG_NEGATIVES

# ONNX Runtime Web for the in-browser page (`export --format web`): unpacked from the npm registry at
# build time, never loaded from a CDN at run time.
ORT_WEB_VERSION ?= 1.30.0
ORT_WEB_DIR := artifacts/vendor/onnxruntime-web
ORT_WEB_FILES := ort.wasm.bundle.min.mjs ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm

.PHONY: venv browser postgres web-runtime demo test docs bench clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) $(TORCH_SPEC)
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev]"
	@touch $@

venv: $(VENV)/.installed

demo: venv web-runtime
	$(PY) -m catdog_sk.extract --features hog,color,dense,texture,cnn
	$(PY) -m catdog_sk.fit --model all
	$(PY) -m catdog_sk.export --model artifacts/models --format onnx
	$(PY) -m catdog_sk.export --model artifacts/models --format web

$(ORT_WEB_DIR)/.version-$(ORT_WEB_VERSION):
	@command -v npm >/dev/null || { echo "make web-runtime needs npm (e.g. apt-get install npm)"; exit 1; }
	rm -rf $(ORT_WEB_DIR) && mkdir -p $(ORT_WEB_DIR)/.pack
	cd $(ORT_WEB_DIR)/.pack && npm pack --silent onnxruntime-web@$(ORT_WEB_VERSION) >/dev/null
	tar -xzf $(ORT_WEB_DIR)/.pack/onnxruntime-web-$(ORT_WEB_VERSION).tgz -C $(ORT_WEB_DIR)/.pack
	cd $(ORT_WEB_DIR)/.pack/package/dist && cp $(ORT_WEB_FILES) ../../..
	cp $(ORT_WEB_DIR)/.pack/package/package.json $(ORT_WEB_DIR)/
	rm -rf $(ORT_WEB_DIR)/.pack && touch $@

web-runtime: $(ORT_WEB_DIR)/.version-$(ORT_WEB_VERSION)

# The browser tests drive Debian's chromium through chromium-driver. System packages are installed only
# here, when asked (`make browser`), and by CI (CI=true makes `make test` run this first); a plain
# `make test` without them skips the browser tests and says why.
# Only the missing ones: an npm that came with NodeSource's nodejs conflicts with Debian's npm package.
browser:
	@PKGS=$$(command -v chromium >/dev/null || echo chromium; command -v chromedriver >/dev/null || echo chromium-driver; \
	  command -v npm >/dev/null || echo npm); [ -z "$$PKGS" ] || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$PKGS; }

# The shared prediction log's tests start a throwaway PostgreSQL cluster (initdb + pg_ctl, a free port):
# Debian's postgresql, installed here when asked (`make postgres`) and by CI, as the browser is.
postgres:
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql; }

test: venv $(if $(filter true 1 yes,$(CI)),browser postgres)
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory web-runtime; \
	  else echo "npm not found: the in-browser page test will be skipped (make browser installs npm)"; fi
	$(MAKE) --no-print-directory docs
	$(PY) -m pytest

# The documentation site (Sphinx, numpydoc, pydata theme, sphinx-gallery): warnings are errors, and the
# gallery's examples run on a few dozen shared photos (features cached in docs/_build), so a broken example
# or docstring fails the build. `make test` builds it first, and tests/test_docs.py opens it in Chromium.
docs: venv
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

bench: venv
	$(PY) benchmarks/bench_extract.py
	$(PY) benchmarks/bench_classic.py
	$(PY) benchmarks/bench_cnn.py
	$(PY) benchmarks/bench_memory_latency.py
	$(PY) benchmarks/bench_monitor.py
	$(PY) benchmarks/bench_export.py
	$(PY) benchmarks/bench_domains.py
	$(PY) benchmarks/bench_serving.py

clean:
	rm -rf $(VENV) artifacts/cache artifacts/models artifacts/reports
