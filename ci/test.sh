#!/usr/bin/env bash
# The test command (README): installs what is missing, lints, runs every test.
# Extra arguments go to pytest, e.g. `bash ci/test.sh -m "not slow"` for the fast unit tests only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh  # also the Debian packages the checks use (Chromium, npm)

echo "== ruff"
python3 -m ruff check .
python3 -m ruff format --check .
bash ci/check_workflows.sh  # zizmor and actionlint on .github/workflows/
echo "== pytest"
python3 -m pytest "$@"
