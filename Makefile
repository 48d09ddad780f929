# Everything runs inside .venv, made and filled on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Sources only: the .c files cythonize writes beside them (again in every
# alt-build below) must not make the next make reinstall.
KERNEL_SOURCES := $(wildcard kernels_pyx/*.pyx kernels_pyx/*.pxd kernels_pyx/*.h) \
                  setup.py pyproject.toml
# The peer engines (extra "peers": Larq Compute Engine, TensorFlow) where
# their wheels exist: Linux x86_64, CPython 3.10-3.12. PEERS=0 skips them.
# They pin numpy < 2, so they get a venv of their own (about 2 GB and 4
# minutes to install) and the main one keeps the numpy everything else uses.
PEERS ?= $(shell $(PYTHON) -c "import platform, sys; \
    print(int(platform.system() == 'Linux' and platform.machine() == 'x86_64' \
    and (3, 10) <= sys.version_info[:2] <= (3, 12)))" 2>/dev/null || echo 0)
PEERS_VENV  ?= .venv-peers
PEERS_BIN   := $(PEERS_VENV)/bin
PEERS_STAMP := $(PEERS_VENV)/.installed-stamp

.PHONY: run test test-portable test-avx512-emulated test-avx2 test-peers verify clean help venv

help:
	@echo "make run            default sweep on this host, then the HTML report of results/"
	@echo "make test           full test suite: native, portable and emulated AVX-512 builds"
	@echo "make verify         exactness check of every kernel on this host"
	@echo "make clean          remove builds and the virtual environments"
	@echo "make venv           only make (or repair) .venv, without installing bnnbench"
	@echo "make constraints    record the venvs' package versions as the pins installs use (PIN=0: none)"
	@echo "make asv-quick      asv suites on the last ASV_COMMITS commits, one sample each"
	@echo "make asv-run        the same with full sampling; asv-publish / asv-preview / asv-compare"
	@echo "make arm-verify     build for aarch64 and armv7 and verify under qemu-user"
	@echo "make arm-sweep      a --quick sweep under qemu-aarch64 into results/ (marked emulated)"
	@echo "make tile-bench     xnor tile variants timed side by side in C (TILE_BENCH_ARGS=--help)"

# A fresh machine either works or says what to install. Debian's python3
# comes without the venv module's ensurepip (package python3-venv) and
# without the headers the kernels compile against (python3-dev): check
# both before making a venv and stop with the one line that fixes it.
APT_LINE := apt-get install python3-venv python3-dev
HAS_HEADERS := import os, sys, sysconfig; \
    sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))

# Installs take the versions `make test` last passed with, recorded in
# constraints/ for CPython 3.11 on x86_64 (where CI tests them; elsewhere
# the lines do not apply and pip resolves the newest releases). A fresh
# clone then builds what CI built: an upstream release cannot break it, and
# BLAS, the float baseline, stays the same build. PIN=0 resolves the newest
# everywhere; after `make clean test PIN=0` passes, `make constraints`
# records that set.
PIN ?= 1
ifeq ($(PIN),1)
PIN_MAIN  := -c constraints/main.txt
PIN_PEERS := -c constraints/peers.txt
# Cython, numpy and setuptools in pip's isolated build environment: the
# kernels' C comes from them. pip learnt this option in 25.3, so every
# install first brings pip up to date (a venv made before may hold an
# older one).
PIN_BUILD := --build-constraint constraints/build.txt
PIN_FILES := $(wildcard constraints/*.txt)
PIN_HINT  := || { echo "make: pip failed; where a pinned version (constraints/) is the cause, PIN=0 takes the newest" >&2; exit 1; }
endif

# $(call venv,DIR): make DIR a working venv of $(PYTHON) unless it is one.
# It is one when its python runs, imports pip, and was made to the end
# (DIR/.venv-made, or an install stamp from before that marker existed).
# Anything else there is the rest of an interrupted or failed
# `python -m venv` (Debian's leaves a venv without pip): made again.
define venv
	@if $(1)/bin/python -c 'import pip' >/dev/null 2>&1 \
	    && { [ -f $(1)/.venv-made ] || [ -f $(1)/.installed-stamp ]; }; then :; else \
	  if [ -e $(1) ]; then echo "$(1) is half made: making it again"; rm -rf $(1); fi; \
	  $(PYTHON) -c 'import sys' >/dev/null 2>&1 || { echo "make: cannot run $(PYTHON): install Python 3.9+ (Debian/Ubuntu: $(APT_LINE)) or pass PYTHON=/path/to/python3" >&2; exit 1; }; \
	  $(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1 || { echo "make: $(PYTHON) has no venv/ensurepip module; install it: $(APT_LINE)" >&2; exit 1; }; \
	  $(PYTHON) -c "$(HAS_HEADERS)" || { echo "make: no Python.h for $(PYTHON) (the kernels compile against it); install it: $(APT_LINE)" >&2; exit 1; }; \
	  echo "$(PYTHON) -m venv $(1)"; \
	  out=$$($(PYTHON) -m venv $(1) 2>&1) || { rm -rf $(1); \
	    echo "make: $(PYTHON) -m venv $(1) failed ($$(printf '%s\n' "$$out" | grep . | tail -n 1)); install: $(APT_LINE)" >&2; exit 1; }; \
	  touch $(1)/.venv-made; \
	fi
	@$(1)/bin/python -c "$(HAS_HEADERS)" || { echo "make: no Python.h for $(1)/bin/python (the kernels compile against it); install it: $(APT_LINE)" >&2; exit 1; }
endef

# The virtual environment alone (made or repaired), without installing.
venv:
	$(call venv,$(VENV))

# $(call install,BIN,pins,extras): pip first (see PIN_BUILD), then bnnbench.
COMMA := ,
define install
	$(1)/python -m pip install --quiet --upgrade $(2) pip $(PIN_HINT)
	$(1)/python -m pip install --quiet $(2) $(PIN_BUILD) -e '.[$(3)]' $(PIN_HINT)
endef

$(STAMP): $(KERNEL_SOURCES) $(PIN_FILES)
	$(call venv,$(VENV))
	$(call install,$(BIN),$(PIN_MAIN),test)
	@touch $@

$(PEERS_STAMP): $(KERNEL_SOURCES) $(PIN_FILES)
	$(call venv,$(PEERS_VENV))
	$(call install,$(PEERS_BIN),$(PIN_PEERS),test$(COMMA)peers)
	@touch $@

# The venvs' versions as the pins above (run after `make clean test PIN=0`
# passes; it installs nothing itself).
.PHONY: constraints
constraints:
	$(BIN)/python tools/constraints.py constraints/main.txt
	$(BIN)/python tools/constraints.py constraints/build.txt Cython numpy setuptools wheel
	if [ -x $(PEERS_BIN)/python ]; then $(PEERS_BIN)/python tools/constraints.py constraints/peers.txt; fi

# The GEMM sweep, the layer sweep and one small whole-network sweep (with the
# peer engines where the extra is installed) each add a run file to results/;
# the report then covers every run there (copy other devices' results/ in to
# compare them) and says where it is.
ifeq ($(PEERS),1)
LAYER_BIN := $(PEERS_BIN)
run: $(PEERS_STAMP)
else
LAYER_BIN := $(BIN)
endif
run: $(STAMP)
	$(BIN)/bnnbench sweep
	$(LAYER_BIN)/bnnbench sweep --level conv
	$(LAYER_BIN)/bnnbench sweep --level model --models cntk-bnn,bmxnet-resnet18-cifar10 --threads 1
	$(BIN)/bnnbench report results --out reports

verify: $(STAMP)
	$(BIN)/bnnbench verify

test: $(STAMP) test-portable test-avx512-emulated sshd
	$(BIN)/python -m pytest -q

# The peer engines for real (exactness, thread counts), in their own venv;
# the main suite above checks the message a missing extra gives.
test-peers: $(PEERS_STAMP)
	$(PEERS_BIN)/python -m pytest -q -p no:cacheprovider tests/test_peers.py \
	    tests/test_peer_networks.py tests/test_larq_accuracy.py

ifeq ($(PEERS),1)
test: test-peers
endif

# tests/test_fleet.py drives real OpenSSH servers on 127.0.0.1 with their
# own config: install Debian's openssh-server where it is missing and
# apt-get can (as root, on a host without systemd, e.g. CI's container, so
# no SSH service gets started on a workstation); elsewhere those tests skip
# and say what to install.
SSHD_BIN ?= /usr/sbin/sshd
.PHONY: sshd
sshd:
	@if [ ! -x $(SSHD_BIN) ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] \
	    && [ ! -d /run/systemd/system ]; then \
	    echo "installing openssh-server for the fleet tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        --no-install-recommends openssh-server >/dev/null) \
	    || echo "could not install openssh-server: the fleet tests will skip"; \
	fi

# The exactness tests (GEMM, whole layers, whole networks) against a second build of the
# kernels in build/<name>:
# $(call alt-build,<name>,<env for setup.py>,<expected kernel path>[,<more tests>]).
define alt-build
	rm -rf build/$(1)
	$(2) $(BIN)/python setup.py -q build --build-base build/$(1)/tmp \
	    build_py --build-lib build/$(1)/lib build_ext --build-lib build/$(1)/lib
	cd build/$(1) && BNNBENCH_EXPECT_PATH=$(3) PYTHONPATH=lib \
	    ../../$(BIN)/python -m pytest -q -p no:cacheprovider ../../tests/test_exactness.py \
	    ../../tests/test_conv.py ../../tests/test_network.py $(4)
endef

# Kernels built without native flags or intrinsics: what any gcc/clang
# (e.g. on a Raspberry Pi) would build.
test-portable: $(STAMP)
	$(call alt-build,portable,BNNBENCH_PORTABLE=1,portable)

# The AVX2 kernels, on hosts whose native build takes the AVX-512 path and so
# would leave the path most x86 machines run untested; its probe loops too.
test-avx2: $(STAMP)
	$(call alt-build,avx2,BNNBENCH_CFLAGS=-mno-avx512f,avx2,../../tests/test_probe.py)

ifneq ($(shell grep -qw avx512f /proc/cpuinfo 2>/dev/null && grep -qw avx512_vpopcntdq /proc/cpuinfo && echo yes),)
test: test-avx2
endif

# The AVX-512 VPOPCNTDQ kernels with SIMDe standing in for the instructions,
# so their exactness is checked on hosts that lack them.
test-avx512-emulated: $(STAMP)
	$(call alt-build,avx512-emulated,BNNBENCH_EMULATE_AVX512=1,avx512-vpopcntdq-simde)

clean:
	rm -rf build $(VENV) $(PEERS_VENV) bnnbench/*.so kernels_pyx/*.c *.egg-info

# ---------------------------------------------------------------------------
# asv: the kernels across the project's history (docs/asv.md). asv builds
# every commit into its own virtualenv under .asv/env; results and HTML go
# to .asv/results and .asv/html.
ASV         := $(BIN)/asv
ASV_MACHINE ?= $(shell uname -n)
ASV_COMMITS ?= 3
ASV_ARGS    ?=
ASV_BASE    ?= HEAD~1
ASV_NEW     ?= HEAD
ASV_PORT    ?= 8080
ASV_RESULTS := .asv/results
ASV_HTML    := .asv/html

.PHONY: asv-machine asv-run asv-quick asv-publish asv-preview asv-compare asv-check \
        asv-html-assets asv-html-test-tools

# asv's machine description without questions, and bnnbench's fingerprint of
# this host beside it (.asv/results/<machine>/bnnbench-host.jsonl).
asv-machine: $(STAMP)
	$(ASV) machine --yes --machine '$(ASV_MACHINE)' > /dev/null
	$(BIN)/python -m bnnbench.runs.asv save-host --results $(ASV_RESULTS) \
	    --machine '$(ASV_MACHINE)'

# Every suite on each of the last ASV_COMMITS commits (first parents of HEAD).
# asv's environments take the pinned versions too (asv's pip reads
# PIP_CONSTRAINT), so its builds use the Cython and numpy `make test` does.
asv-run: asv-machine
	@mkdir -p .asv
	git rev-list --first-parent -n $(ASV_COMMITS) HEAD > .asv/commits.txt
	$(if $(PIN_MAIN),PIP_CONSTRAINT='$(CURDIR)/constraints/main.txt') $(ASV) run --machine '$(ASV_MACHINE)' --record-samples $(ASV_ARGS) HASHFILE:.asv/commits.txt

# The same with one sample per benchmark: a smoke test, minutes per commit.
asv-quick:
	$(MAKE) asv-run ASV_ARGS='--quick $(ASV_ARGS)'

# asv's pages load jQuery, flot, bootstrap, ... from CDNs. asv-publish copies
# them from the npm packages pinned in tools/asv-html/ into .asv/html and
# points the pages there, so they work offline and from file:// (docs/asv.md).
ASV_HTML_TOOLS  := tools/asv-html
ASV_HTML_ASSETS := $(ASV_HTML_TOOLS)/node_modules/.installed-stamp

$(ASV_HTML_ASSETS): $(ASV_HTML_TOOLS)/package.json $(ASV_HTML_TOOLS)/package-lock.json
	$(ASV_HTML_TOOLS)/need.sh npm npm
	npm ci --prefix $(ASV_HTML_TOOLS) --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

asv-html-assets: $(ASV_HTML_ASSETS)

asv-publish: $(STAMP) $(ASV_HTML_ASSETS)
	$(ASV) publish
	$(BIN)/python $(ASV_HTML_TOOLS)/offline.py $(ASV_HTML)

asv-preview: asv-publish
	$(ASV) preview --port $(ASV_PORT)

asv-compare: $(STAMP)
	$(ASV) compare --machine '$(ASV_MACHINE)' $(ASV_BASE) $(ASV_NEW)

# CI: asv.conf.json and the suites import and check, without running them.
asv-check: $(STAMP)
	$(ASV) check --python=same

test: asv-check

# What tests/test_asv_offline.py needs (the pinned npm packages, headless
# Chromium); where they cannot be had, it skips and says why.
asv-html-test-tools:
	-@$(MAKE) --no-print-directory asv-html-assets
	-@$(ASV_HTML_TOOLS)/need.sh chromium chromium

test: asv-html-test-tools

# ---------------------------------------------------------------------------
# Raspberry Pi without a Pi (docs/fleet.md). On an x86-64 Debian/Ubuntu
# machine: installs cross compilers and qemu-user (apt) on first use,
# unpacks Debian bookworm's arm64/armhf Python into .arm/, builds the
# kernels there as a Pi would and checks them under qemu-user.
ARM_ARCHS ?= aarch64 armv7l

.PHONY: arm-verify arm-sweep tile-bench

# NEON and portable builds of every ARM_ARCHS, `bnnbench verify` on each
# (VERIFY_ARGS=--all-models adds the 224x224 networks: much longer).
arm-verify: $(STAMP)
	tools/arm/arm.sh verify $(ARM_ARCHS)

# A --quick sweep under qemu-aarch64 into results/; its host says emulated.
arm-sweep: $(STAMP)
	tools/arm/arm.sh sweep aarch64 results

# ---------------------------------------------------------------------------
# The xnor tile alone, in C: variants (compiler flags, kernel -D knobs) built
# and timed in alternation, ratios to the first (docs/kernels.md). Needs only
# a C compiler and python3, no venv.
TILE_BENCH_ARGS ?=

tile-bench:
	$(PYTHON) tools/tiles/compare.py $(TILE_BENCH_ARGS)
