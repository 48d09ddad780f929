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

.PHONY: run test test-portable test-avx512-emulated test-avx2 test-peers verify clean help

help:
	@echo "make run            default sweep on this host, then the HTML report of results/"
	@echo "make test           full test suite: native, portable and emulated AVX-512 builds"
	@echo "make verify         exactness check of every kernel on this host"
	@echo "make clean          remove builds and the virtual environment"
	@echo "make asv-quick      asv suites on the last ASV_COMMITS commits, one sample each"
	@echo "make asv-run        the same with full sampling; asv-publish / asv-preview / asv-compare"
	@echo "make arm-verify     build for aarch64 and armv7 and verify under qemu-user"
	@echo "make arm-sweep      a --quick sweep under qemu-aarch64 into results/ (marked emulated)"

$(STAMP): $(KERNEL_SOURCES)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

$(PEERS_STAMP): $(KERNEL_SOURCES)
	@test -x $(PEERS_BIN)/python || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_BIN)/python -m pip install --quiet --upgrade pip
	$(PEERS_BIN)/python -m pip install --quiet -e '.[test,peers]'
	@touch $@

# The GEMM sweep and the layer sweep (with the peer engines where the extra
# is installed) each add a run file to results/; the report then covers every run
# there (copy other devices' results/ in to compare them) and says where it is.
ifeq ($(PEERS),1)
LAYER_BIN := $(PEERS_BIN)
run: $(PEERS_STAMP)
else
LAYER_BIN := $(BIN)
endif
run: $(STAMP)
	$(BIN)/bnnbench sweep
	$(LAYER_BIN)/bnnbench sweep --level conv
	$(BIN)/bnnbench report results --out reports

verify: $(STAMP)
	$(BIN)/bnnbench verify

test: $(STAMP) test-portable test-avx512-emulated sshd
	$(BIN)/python -m pytest -q

# The peer engines for real (exactness, thread counts), in their own venv;
# the main suite above checks the message a missing extra gives.
test-peers: $(PEERS_STAMP)
	$(PEERS_BIN)/python -m pytest -q -p no:cacheprovider tests/test_peers.py

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

# The exactness tests (GEMM and whole layers) against a second build of the
# kernels in build/<name>:
# $(call alt-build,<name>,<env for setup.py>,<expected kernel path>).
define alt-build
	rm -rf build/$(1)
	$(2) $(BIN)/python setup.py -q build --build-base build/$(1)/tmp \
	    build_py --build-lib build/$(1)/lib build_ext --build-lib build/$(1)/lib
	cd build/$(1) && BNNBENCH_EXPECT_PATH=$(3) PYTHONPATH=lib \
	    ../../$(BIN)/python -m pytest -q -p no:cacheprovider ../../tests/test_exactness.py \
	    ../../tests/test_conv.py
endef

# Kernels built without native flags or intrinsics: what any gcc/clang
# (e.g. on a Raspberry Pi) would build.
test-portable: $(STAMP)
	$(call alt-build,portable,BNNBENCH_PORTABLE=1,portable)

# The AVX2 kernels, on hosts whose native build takes the AVX-512 path and so
# would leave the path most x86 machines run untested.
test-avx2: $(STAMP)
	$(call alt-build,avx2,BNNBENCH_CFLAGS=-mno-avx512f,avx2)

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
# asv: the kernels across the project's history (README: "Tracking kernels
# across commits with asv"). asv builds every commit into its own virtualenv
# under .asv/env; results and HTML go to .asv/results and .asv/html.
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
	$(BIN)/python -m bnnbench.asv_results save-host --results $(ASV_RESULTS) \
	    --machine '$(ASV_MACHINE)'

# Every suite on each of the last ASV_COMMITS commits (first parents of HEAD).
asv-run: asv-machine
	@mkdir -p .asv
	git rev-list --first-parent -n $(ASV_COMMITS) HEAD > .asv/commits.txt
	$(ASV) run --machine '$(ASV_MACHINE)' --record-samples $(ASV_ARGS) HASHFILE:.asv/commits.txt

# The same with one sample per benchmark: a smoke test, minutes per commit.
asv-quick:
	$(MAKE) asv-run ASV_ARGS='--quick $(ASV_ARGS)'

# asv's pages load jQuery, flot, bootstrap, ... from CDNs. asv-publish copies
# them from the npm packages pinned in tools/asv-html/ into .asv/html and
# points the pages there, so they work offline and from file:// (README:
# "Tracking kernels across commits with asv").
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
# Raspberry Pi without a Pi (README: "Running on a Raspberry Pi"). On an
# x86-64 Debian/Ubuntu machine: installs cross compilers and qemu-user (apt)
# on first use, unpacks Debian bookworm's arm64/armhf Python into .arm/, builds
# the kernels there as a Pi would and checks them under qemu-user.
ARM_ARCHS ?= aarch64 armv7l

.PHONY: arm-verify arm-sweep

# NEON and portable builds of every ARM_ARCHS, `bnnbench verify` on each.
arm-verify: $(STAMP)
	tools/arm/arm.sh verify $(ARM_ARCHS)

# A --quick sweep under qemu-aarch64 into results/; its host says emulated.
arm-sweep: $(STAMP)
	tools/arm/arm.sh sweep aarch64 results
