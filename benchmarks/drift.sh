#!/usr/bin/env bash
# Drift check: install the newest releases that pyproject.toml allows (no lock) into a scratch venv,
# list where they differ from envs/requirements-lock.txt, and run the test suite against them.
# Run it by hand once a month and before moving the lock forward (docs/reproducibility.md).
#   bash benchmarks/drift.sh              # full suite
#   bash benchmarks/drift.sh -k solve     # extra arguments go to pytest
# Exit code: pytest's. The lock test that checks "this environment is the lock" is left out, since
# drifting from the lock is the point here.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d "${TMPDIR:-/tmp}/feederflex-drift.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
python3 -m venv "$scratch/venv"
"$scratch/venv/bin/pip" install -q --upgrade --upgrade-strategy eager -e ".[test]"
"$scratch/venv/bin/python" - <<'PY'
from feederflex import io

drift = io.environment(io.LOCK_FILE)["lock_mismatches"]
print(f"{len(drift)} installed packages differ from {io.LOCK_FILE.name}:")
for line in drift:
    print("  " + line)
PY
status=0
"$scratch/venv/bin/python" -m pytest -q --deselect tests/test_lock.py::test_this_environment_is_the_lock "$@" || status=$?
exit "$status"
