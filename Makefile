# komeet-sync: every target installs what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXAMPLES := komeet_sync/examples
export KOMEET_SYNC_HOME ?= $(CURDIR)/.komeet_sync

.PHONY: demo lab test test-scale lint bench bench-engine bench-audit bench-google bench-google-groups bench-scim bench-read bench-apply bench-pipeline bench-sync bench-incremental bench-group-patch bench-scim-workers bench-rate-limit bench-domains install system-packages clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	@# uv resolves and installs the pinned set in seconds where pip takes minutes; it is
	@# itself pinned, and the constraints also hold for the package's build environment.
	@# It compiles the packages' bytecode once, as pip does: where PYTHONDONTWRITEBYTECODE
	@# is set, every process would otherwise compile what it imports (Dagster's run, code
	@# server and webserver processes, each command), 15 s instead of 8 s for Dagster's.
	PIP_CONSTRAINT=$(CURDIR)/constraints.txt $(BIN)/pip install --quiet \
	    --disable-pip-version-check pip uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python \
	    --constraint constraints.txt --build-constraint constraints.txt -e '.[dev]'
	@# Notebook outputs never reach a commit: git strips them on add (.gitattributes).
	@if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then $(BIN)/nbstripout --install; fi
	touch $@

install: $(STAMP)

# The main job on the embedded default: the offline audit of the bundled examples, then the
# whole product (scripts/demo.py): acme.example read from the Google Directory API emulator
# (a generated directory of 3,000 people), globex.com pushed to the SCIM endpoint as Entra ID
# would, scim2-server as Komeet, both domains materialized by the Dagster job and a summary
# printed, then the Dagster UI served until Ctrl-C. `make demo DEMO_ARGS=--no-ui` ends after
# the summary. Exit code 3 of an audit is a plan held by a guard: a result, not a failure.
DEMO_ARGS ?=
demo: $(STAMP)
	$(BIN)/komeet-sync audit --domain acme.com --alias-domain acme.io --group all@acme.com \
	    --protect it-admin@acme.com --max-deactivation-share 0.4 \
	    --google-users $(EXAMPLES)/acme/users.json --google-members $(EXAMPLES)/acme/members.json \
	    --komeet $(EXAMPLES)/acme/komeet_users.json --out $(KOMEET_SYNC_HOME)/audit/acme.com \
	    > /dev/null || [ $$? -eq 3 ]
	$(BIN)/komeet-sync audit --domain globex.com --group "Komeet Users" \
	    --scim-users $(EXAMPLES)/globex/scim_users.json --scim-groups $(EXAMPLES)/globex/scim_groups.json \
	    --komeet $(EXAMPLES)/globex/komeet_users.json --out $(KOMEET_SYNC_HOME)/audit/globex.com \
	    > /dev/null || [ $$? -eq 3 ]
	@echo "Offline audits of the bundled exports written to $(KOMEET_SYNC_HOME)/audit/"
	$(BIN)/python scripts/demo.py $(DEMO_ARGS)

# The analysts' notebooks in JupyterLab, reading the state `make demo` left.
LAB_ARGS ?=
lab: $(STAMP)
	@[ -d "$(KOMEET_SYNC_HOME)/syncs" ] || [ -d "$(KOMEET_SYNC_HOME)/assets" ] || echo "Nothing synced under $(KOMEET_SYNC_HOME) yet:" \
	    "run make demo first, the notebooks read its reports."
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# Every test, PostgreSQL included (installed from the system's packages when missing), on
# three workers (pytest-xdist: a test waiting on a server or a subprocess leaves the CPU to
# another), each module on one worker so that its module fixtures are made once, the
# slowest modules first (SLOWEST in tests/conftest.py); PYTEST_ARGS adds to or overrides
# that, e.g. PYTEST_ARGS="-n 0 -x".
PYTEST_ARGS ?=
test: $(STAMP) system-packages lint
	$(BIN)/pytest -n 3 --dist loadscope --no-loadscope-reorder $(PYTEST_ARGS)

# The generated and repeated tests at full size (tests/support/scale.py): the SCIM fuzz with
# 500 requests per database (150 in `make test`), the killed applies in 8 rounds (4), the
# incremental sync's property with 60 directories (20), the engine's properties with 1,000
# examples (25), the fast SCIM and email readers' and the exports' comparisons with 250-300
# examples (80-100). About 12 minutes more; CI runs `make test` within its time.
SCALE_TESTS := tests/sources/scim/test_fuzz.py tests/komeet/test_apply_crash.py \
    tests/runs/test_incremental.py tests/engine/test_reconcile_properties.py \
    tests/model/test_scim_resources.py tests/model/test_emails.py tests/sources/test_exports.py
test-scale: $(STAMP) system-packages
	KOMEET_SYNC_TEST_SCALE=1 HYPOTHESIS_PROFILE=thorough $(BIN)/pytest -n 3 --dist loadscope \
	    --no-loadscope-reorder $(SCALE_TESTS) $(PYTEST_ARGS)

# Ruff, the layers' import contracts (pyproject.toml, [tool.importlinter]), then mypy.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

system-packages:
	@scripts/system-packages.sh

bench: bench-engine bench-audit bench-google bench-google-groups bench-scim bench-scim-workers bench-rate-limit bench-read bench-apply bench-pipeline bench-sync bench-incremental bench-group-patch

bench-engine: $(STAMP)
	$(BIN)/python benchmarks/reconcile.py

bench-audit: $(STAMP)
	$(BIN)/python benchmarks/audit.py

bench-google: $(STAMP)
	$(BIN)/python benchmarks/google_extract.py

# `komeet-sync google groups` on a Workspace of 10,000 groups (benchmarks/RESULTS.md).
bench-google-groups: $(STAMP)
	$(BIN)/python benchmarks/google_groups.py

bench-scim: $(STAMP)
	$(BIN)/python benchmarks/scim_load.py

# `komeet-sync scim serve --workers N` at 1, 2 and 4 processes, on PostgreSQL (a throwaway
# server, fsync on) then SQLite, 5,000 users created then patched: writes/s, p50/p95/p99,
# lost and unlogged requests, and each count's speed-up over 1 process, from one run.
bench-scim-workers: $(STAMP) system-packages
	$(BIN)/python benchmarks/scim_load.py --database postgresql,sqlite --workers 1,2,4 --users 5000

# calm.com's p99 latency while another domain's IdP floods the endpoint, its limit on and
# off (benchmarks/RESULTS.md, "One domain flooded").
bench-rate-limit: $(STAMP)
	$(BIN)/python benchmarks/rate_limit.py

bench-read: $(STAMP)
	$(BIN)/python benchmarks/komeet_read.py

bench-apply: $(STAMP)
	$(BIN)/python benchmarks/apply.py

bench-pipeline: $(STAMP)
	$(BIN)/python benchmarks/pipeline.py

# A whole `komeet-sync sync` of a 100,000-person Google domain into an empty Komeet, both
# behind 20 ms of latency, with each step's share of the time.
bench-sync: $(STAMP)
	$(BIN)/python benchmarks/sync.py

# From the 2xx an IdP gets to the Komeet write acknowledged, through `komeet-sync scim serve
# --worker`, on SCIM domains of 100 and 100,000 people (p50, p95, max).
bench-incremental: $(STAMP)
	$(BIN)/python benchmarks/incremental.py --komeet indexed

bench-group-patch: $(STAMP)
	$(BIN)/python benchmarks/group_patch.py

# The Dagster deployment with 100, 300 and 1,000 SCIM domains on PostgreSQL: the real
# dagster-daemon's sensor and schedule ticks, then a backfill of every domain through the
# queued run coordinator, with the daemon's memory. Two hours or more on 2 cores (each
# schedule tick of 1,000 domains takes about 10 minutes, the backfill of 1,000 runs most of
# the rest), so not part of `make bench`; under the benchmarks' lock, so that no other
# benchmark shares the machine with it.
bench-domains: $(STAMP) system-packages
	flock /tmp/komeet-bench.lock $(BIN)/python benchmarks/thousand_domains.py \
	    --domains 100,300,1000 --steady 3

clean:
	rm -rf $(VENV) .komeet_sync .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .hypothesis
