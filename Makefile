# Everything runs inside .venv, made and filled on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
KERNEL_SOURCES := $(wildcard kernels_pyx/*) setup.py pyproject.toml

.PHONY: run test test-portable verify clean help

help:
	@echo "make run            default sweep on this host, then the HTML report of results/"
	@echo "make test           full test suite, native and portable kernel builds"
	@echo "make verify         exactness check of every kernel on this host"
	@echo "make clean          remove builds and the virtual environment"

$(STAMP): $(KERNEL_SOURCES)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

# The sweep adds a run file to results/; the report then covers every run
# there (copy other devices' results/ in to compare them) and says where it is.
run: $(STAMP)
	$(BIN)/bnnbench sweep
	$(BIN)/bnnbench report results --out reports

verify: $(STAMP)
	$(BIN)/bnnbench verify

test: $(STAMP) test-portable
	$(BIN)/python -m pytest -q

# The same exactness tests against kernels built without native flags or
# intrinsics: what any gcc/clang (e.g. on a Raspberry Pi) would build.
PORTABLE := build/portable
test-portable: $(STAMP)
	rm -rf $(PORTABLE)
	BNNBENCH_PORTABLE=1 $(BIN)/python setup.py -q build --build-base $(PORTABLE)/tmp \
	    build_py --build-lib $(PORTABLE)/lib build_ext --build-lib $(PORTABLE)/lib
	cd $(PORTABLE) && BNNBENCH_EXPECT_PATH=portable PYTHONPATH=lib \
	    ../../$(BIN)/python -m pytest -q -p no:cacheprovider ../../tests/test_exactness.py

clean:
	rm -rf build $(VENV) bnnbench/*.so kernels_pyx/*.c *.egg-info
