# sf-intuser: the two commands are `make demo` and `make test`; both run `make setup` first.
# Everything installs inside this checkout (.venv, tools/sf-cli/node_modules); nothing global.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SFCLI  := tools/sf-cli

.PHONY: setup test test-fast test-e2e test-faults test-hostile lint-code demo bench clean

setup: $(VENV)/.installed $(SFCLI)/node_modules/.installed $(VENV)/bin/sf $(SFCLI)/data/package.json

$(VENV)/.installed: pyproject.toml
	@echo "sf-intuser setup: a Python environment in .venv (pip, about a minute the first time)..."
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,cli]' --config-settings editable_mode=compat
	$(PY) -m compileall -q sf_intuser
	@touch $@

# The pinned Salesforce CLI, installed from its committed lockfile with a Node >= 22.19 from PyPI
# (the wheel's own npm launcher is broken, so the machine's npm script runs on that Node).
$(SFCLI)/node_modules/.installed: $(SFCLI)/package-lock.json $(VENV)/.installed
	@echo "sf-intuser setup: the pinned Salesforce CLI in tools/sf-cli (npm ci, a minute or two the first time)..."
	@NODE_BIN=$$($(PY) -m sf_intuser.sf.install node-bin) && \
	  PATH="$$NODE_BIN:$$PATH" $(PY) -m sf_intuser.sf.install npm -- ci --prefix $(SFCLI) \
	    --no-audit --no-fund --loglevel=error
	@touch $@

$(VENV)/bin/sf: $(SFCLI)/node_modules/.installed sf_intuser/sf/install.py
	$(PY) -m sf_intuser.sf.install shim --sf-root $(SFCLI) --out $@

# `sf intuser ...`: the plugin linked into the pinned CLI only. The shim points oclif's data folder
# (SF_DATA_DIR) at tools/sf-cli/data, so the link is recorded there, not in ~/.local/share/sf, and the
# user's own sf is untouched. With no lockfile in plugin-manifest/, `sf plugins link` runs no npm.
$(SFCLI)/data/package.json: plugin-manifest/package.json $(VENV)/bin/sf
	$(VENV)/bin/sf plugins link plugin-manifest --no-install >/dev/null
	@test -f $@

# The tests, in lanes by marker (pyproject.toml). `make test` runs them all, on two workers
# (pytest-xdist, tests handed out one by one; tests that start from one shared point carry one
# xdist_group and run on one worker, which makes that point once) after ruff and mypy, and prints the
# 20 slowest. SF_INTUSER_STRICT=1 (.ci/run) turns a missing sf CLI or a broken ../shared corpus into a
# failure instead of skipped tests.
PYTEST  := $(PY) -m pytest -q -p no:cacheprovider
WORKERS ?= 2
XDIST   := -n $(WORKERS) --dist loadgroup

test: setup lint-code
	SF_INTUSER_STRICT=1 $(PYTEST) $(XDIST) --durations=20

test-fast: $(VENV)/.installed
	$(PYTEST) -m "not e2e"

test-e2e: setup
	$(PYTEST) $(XDIST) -m "e2e and not faults and not hostile"

test-faults: setup
	$(PYTEST) $(XDIST) -m faults

test-hostile: setup
	$(PYTEST) $(XDIST) -m hostile

# static checks: ruff on everything, mypy strict on the whole package
lint-code: $(VENV)/.installed
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/mypy

demo: setup
	$(VENV)/bin/sf-intuser demo

bench: setup
	$(PY) scripts/bench_convert.py
	$(PY) scripts/bench_read.py
	$(PY) scripts/bench_migrate.py

clean:
	rm -rf $(VENV) $(SFCLI)/node_modules $(SFCLI)/data .pytest_cache
