# Development tasks. `make test` is what CI runs (see .ci/run).
#
#   make test                          # default python3, SQLite then PostgreSQL
#   make test PYTHON=python3.12 DJANGO='Django>=6.0,<7'
#   make demo                          # the pizzeria on http://127.0.0.1:8000/
#   make compat                        # Django's and DDT's own test suites, plain vs with the package
#
# Virtual environments: the default `python3` uses .venv; any other PYTHON gets its own
# .venv-<major.minor> (so switching interpreters never reinstalls the other one). VENV=...
# overrides the directory. A venv built by a different interpreter than $(PYTHON) is
# recreated. The install is redone only when pyproject.toml, DJANGO or the interpreter
# changes (the key is kept in $(VENV)/.ddtpp-installed). Each venv carries its own
# .gitignore, so .venv-<version> never ends up in a commit.

DJANGO ?=
ifeq ($(origin PYTHON),undefined)
PYTHON := python3
VENV ?= .venv
endif
PY_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
VENV ?= .venv-$(PY_VERSION)
VENV_PY := $(VENV)/bin/python
STAMP := $(VENV)/.ddtpp-installed

# Chromium (browser tests) and the PostgreSQL server (second test run), as Debian names them.
BROWSER_PACKAGES := chromium chromium-driver
POSTGRES_PACKAGES := postgresql
APT_ENV := DEBIAN_FRONTEND=noninteractive

.PHONY: help venv install browser-deps postgres-deps test test-sqlite test-postgres compat demo screenshot bench bench-venv peers clean

help:
	@echo "make test        - install, then run the suite on SQLite and on a throwaway PostgreSQL"
	@echo "make demo        - run the demo pizzeria on http://127.0.0.1:8000/"
	@echo "make screenshot  - regenerate docs/screenshot.png from the demo"
	@echo "make bench       - overhead vs no toolbar, DDT panels, django-zeal, nplusone, per loop shape (~25 min; BENCH_ARGS=--quick)"
	@echo "make peers       - django-zeal's and nplusone's own test cases under zeal, nplusone and ours (.venv-peers; PEERS_ARGS=--cases)"
	@echo "make test-sqlite / test-postgres - rerun one half only (PYTEST_ARGS='-x -k name'; PYTEST_WORKERS=0: one process)"
	@echo "make compat      - Django's ORM test apps and django-debug-toolbar's suite, plain vs with the package (~1 min; COMPAT_ARGS=--part ddt)"
	@echo "make venv        - create/refresh $(VENV) with $(PYTHON) (DJANGO='Django>=6.0,<7' pins Django)"
	@echo "make clean       - remove build artefacts (keeps the venvs)"

install: venv

venv:
	@test -n "$(PY_VERSION)" || { echo "error: cannot run PYTHON=$(PYTHON)" >&2; exit 1; }
	@set -e; \
	base=$$($(PYTHON) -c 'import sys; print(sys.base_prefix)'); \
	key="$$base|$(DJANGO)|$$(cksum < pyproject.toml)"; \
	if [ -x "$(VENV_PY)" ] && [ "$$($(VENV_PY) -c 'import sys; print(sys.base_prefix)' 2>/dev/null)" != "$$base" ]; then \
		echo "$(VENV) was made by another Python: recreating it with $(PYTHON)"; rm -rf "$(VENV)"; \
	fi; \
	if [ -f "$(STAMP)" ] && [ "$$(cat "$(STAMP)")" = "$$key" ]; then \
		echo "$(VENV) is up to date (Python $(PY_VERSION)$(if $(DJANGO), with $(DJANGO)))"; exit 0; \
	fi; \
	[ -x "$(VENV_PY)" ] || $(PYTHON) -m venv "$(VENV)"; \
	echo '*' > "$(VENV)/.gitignore"; \
	$(VENV_PY) -m pip install --quiet --disable-pip-version-check --upgrade pip; \
	$(VENV_PY) -m pip install --quiet --disable-pip-version-check -e '.[test]' hatchling; \
	if [ -n "$(DJANGO)" ]; then $(VENV_PY) -m pip install --quiet --disable-pip-version-check '$(DJANGO)'; fi; \
	$(VENV_PY) -m pip check; \
	printf '%s' "$$key" > "$(STAMP)"; \
	$(VENV_PY) -c 'import sys, django, debug_toolbar; print("%s: Python %s, Django %s, django-debug-toolbar %s" % (sys.prefix, sys.version.split()[0], django.__version__, debug_toolbar.VERSION))'

browser-deps:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then \
		echo "chromium and chromedriver found"; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update && $(APT_ENV) apt-get install -y --no-install-recommends $(BROWSER_PACKAGES); \
	else \
		echo "error: /usr/bin/chromium and /usr/bin/chromedriver are missing; install the Debian packages: sudo apt-get install $(BROWSER_PACKAGES)" >&2; \
		exit 1; \
	fi

# Debian's postgresql package would create and start a system cluster on port 5432; the tests
# start their own throwaway server (scripts/with-postgres.sh), so the install is told not to
# create one, unless postgresql-common was configured before; ucf/dpkg keep that file.
postgres-deps:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
		echo "PostgreSQL server binaries found: $$(ls -d /usr/lib/postgresql/*/bin | tr '\n' ' ')"; \
	elif [ "$$(id -u)" = 0 ]; then \
		if [ ! -e /etc/postgresql-common/createcluster.conf ]; then \
			mkdir -p /etc/postgresql-common && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf; \
		fi; \
		apt-get update && $(APT_ENV) UCF_FORCE_CONFFOLD=1 apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-confold $(POSTGRES_PACKAGES); \
	else \
		echo "error: PostgreSQL server binaries (initdb, pg_ctl under /usr/lib/postgresql/*/bin) are missing; install the Debian package: sudo apt-get install $(POSTGRES_PACKAGES)" >&2; \
		exit 1; \
	fi

# Both runs always happen; the target fails if either failed. The PostgreSQL run skips only
# the wheel build, which touches no database. test-sqlite / test-postgres rerun one half
# without the install checks; PYTEST_ARGS='-k panel -x' narrows either.
test: venv browser-deps postgres-deps
	@rc=0; \
	echo "== tests on SQLite"; \
	$(MAKE) --no-print-directory test-sqlite || rc=1; \
	echo "== tests on PostgreSQL"; \
	$(MAKE) --no-print-directory test-postgres || rc=1; \
	if [ $$rc -ne 0 ]; then echo "make test: FAILED (see above)" >&2; fi; \
	exit $$rc

# Two pytest-xdist workers (the machines have two cores): about 40 % off each half, which keeps
# CI's three jobs inside their time budget. PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 2
XDIST := $(if $(filter 0,$(PYTEST_WORKERS)),-p no:xdist,-n $(PYTEST_WORKERS))

test-sqlite:
	$(VENV_PY) -m pytest $(XDIST) $(PYTEST_ARGS)

test-postgres:
	scripts/with-postgres.sh $(VENV_PY) -m pytest $(XDIST) --ignore=tests/test_packaging.py $(PYTEST_ARGS)

# Django's own ORM test apps (runtests.py, SQLite) and django-debug-toolbar's own suite, each run
# plain and with the package (app installed, panel in the toolbar, Django's test bodies inside
# detect()); fails when any test's outcome differs (scripts/compat.py). The suites come from the
# sdists of the installed versions (cached under build/compat/). Their test-only dependencies are
# installed into $(VENV) here, with Django and the toolbar pinned to the installed versions, and
# redone when the venv's install key or this list changes. COMPAT_ARGS='--part django
# --django-apps queries,defer' narrows the run (`$(VENV_PY) scripts/compat.py --help`).
COMPAT_PACKAGES := tblib PyYAML html5lib django-csp django-template-partials whitenoise Jinja2 Pygments
COMPAT_STAMP := $(VENV)/.ddtpp-compat-installed

compat: venv
	@set -e; \
	key="$$(cat "$(STAMP)")|$(COMPAT_PACKAGES)"; \
	if [ ! -f "$(COMPAT_STAMP)" ] || [ "$$(cat "$(COMPAT_STAMP)")" != "$$key" ]; then \
		pins=$$($(VENV_PY) -c 'import django, debug_toolbar; print("Django==%s django-debug-toolbar==%s" % (django.__version__, debug_toolbar.VERSION))'); \
		$(VENV_PY) -m pip install --quiet --disable-pip-version-check $(COMPAT_PACKAGES) $$pins; \
		$(VENV_PY) -m pip check; \
		printf '%s' "$$key" > "$(COMPAT_STAMP)"; \
	fi
	$(VENV_PY) scripts/compat.py $(COMPAT_ARGS)

demo: venv
	cd demo && $(abspath $(VENV_PY)) manage.py migrate --noinput && $(abspath $(VENV_PY)) manage.py seed_demo \
		&& echo "Demo: http://127.0.0.1:8000/" && $(abspath $(VENV_PY)) manage.py runserver 127.0.0.1:8000

screenshot: venv browser-deps
	$(VENV_PY) tests/screenshot.py

# The benchmark runs in its own venv: the package (editable) plus the peers it is compared
# with (django-zeal, nplusone), DRF for the nested-serializer page and py-spy for the profile.
# None of them is a dependency of the package. Reinstalled when pyproject.toml, the
# interpreter or this list changes. BENCH_ARGS='--quick' or '--sizes 10,100 --linearity ""'
# shortens the run (`.venv-bench/bin/python tests/benchmarks/bench.py --help`).
BENCH_VENV ?= .venv-bench
BENCH_PY := $(BENCH_VENV)/bin/python
BENCH_STAMP := $(BENCH_VENV)/.ddtpp-installed
BENCH_DJANGO ?= Django>=5.2,<6
BENCH_PACKAGES := django-zeal nplusone djangorestframework py-spy

bench-venv:
	@test -n "$(PY_VERSION)" || { echo "error: cannot run PYTHON=$(PYTHON)" >&2; exit 1; }
	@set -e; \
	base=$$($(PYTHON) -c 'import sys; print(sys.base_prefix)'); \
	key="$$base|$(BENCH_DJANGO)|$(BENCH_PACKAGES)|$$(cksum < pyproject.toml)"; \
	if [ -x "$(BENCH_PY)" ] && [ "$$($(BENCH_PY) -c 'import sys; print(sys.base_prefix)' 2>/dev/null)" != "$$base" ]; then \
		echo "$(BENCH_VENV) was made by another Python: recreating it with $(PYTHON)"; rm -rf "$(BENCH_VENV)"; \
	fi; \
	if [ -f "$(BENCH_STAMP)" ] && [ "$$(cat "$(BENCH_STAMP)")" = "$$key" ]; then exit 0; fi; \
	[ -x "$(BENCH_PY)" ] || $(PYTHON) -m venv "$(BENCH_VENV)"; \
	echo '*' > "$(BENCH_VENV)/.gitignore"; \
	$(BENCH_PY) -m pip install --quiet --disable-pip-version-check --upgrade pip; \
	$(BENCH_PY) -m pip install --quiet --disable-pip-version-check -e . '$(BENCH_DJANGO)' $(BENCH_PACKAGES); \
	$(BENCH_PY) -m pip check; \
	printf '%s' "$$key" > "$(BENCH_STAMP)"

bench: bench-venv
	$(BENCH_PY) tests/benchmarks/bench.py $(BENCH_ARGS)

# The peers' own detectors on their published test cases (tests/peers/cases.py), next to ours.
# Not part of `make test`: zeal and nplusone patch Django's ORM, so they get their own venv.
PEERS_VENV := .venv-peers
PEERS_PACKAGES := django-zeal nplusone 'Django>=5.2,<5.3'

peers:
	@set -e; \
	key="$$($(PYTHON) -c 'import sys; print(sys.base_prefix)')|$(PEERS_PACKAGES)|$$(cksum < pyproject.toml)"; \
	if [ ! -f "$(PEERS_VENV)/.ddtpp-installed" ] || [ "$$(cat "$(PEERS_VENV)/.ddtpp-installed")" != "$$key" ]; then \
		rm -rf "$(PEERS_VENV)"; $(PYTHON) -m venv "$(PEERS_VENV)"; echo '*' > "$(PEERS_VENV)/.gitignore"; \
		$(PEERS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check $(PEERS_PACKAGES) -e .; \
		printf '%s' "$$key" > "$(PEERS_VENV)/.ddtpp-installed"; \
	fi; \
	$(PEERS_VENV)/bin/python scripts/peers.py $(PEERS_ARGS)

clean:
	rm -rf build dist *.egg-info
	find . -path ./.venv -prune -o -path './.venv-*' -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
