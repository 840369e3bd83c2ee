# sf-intuser: the two commands are `make demo` and `make test`; both run `make setup` first.
# Everything installs inside this checkout (.venv, tools/sf-cli/node_modules); nothing global.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SFCLI  := tools/sf-cli

.PHONY: setup test demo bench clean

setup: $(VENV)/.installed $(SFCLI)/node_modules/.installed $(VENV)/bin/sf $(SFCLI)/data/package.json

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,cli]' --config-settings editable_mode=compat
	$(PY) -m compileall -q sf_intuser
	@touch $@

# The pinned Salesforce CLI, installed from its committed lockfile with a Node >= 22.19 from PyPI
# (the wheel's own npm launcher is broken, so the machine's npm script runs on that Node).
$(SFCLI)/node_modules/.installed: $(SFCLI)/package-lock.json $(VENV)/.installed
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

test: setup
	$(PY) -m pytest -q

demo: setup
	$(VENV)/bin/sf-intuser demo

bench: setup
	$(PY) scripts/bench_convert.py
	$(PY) scripts/bench_read.py
	$(PY) scripts/bench_migrate.py

clean:
	rm -rf $(VENV) $(SFCLI)/node_modules $(SFCLI)/data .pytest_cache
