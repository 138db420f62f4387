#!/usr/bin/env bash
# The test command (README): installs what is missing, lints, runs every test.
# Extra arguments go to pytest, e.g. `bash ci/test.sh -m "not slow"` for the fast unit tests only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh

# The book's browser check needs a real Chromium (Debian's package; no browser download).
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== installing chromium for the browser check"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "chromium could not be installed: the browser check will be skipped"
fi

echo "== ruff"
python3 -m ruff check .
python3 -m ruff format --check .
echo "== pytest"
python3 -m pytest "$@"
