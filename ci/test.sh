#!/usr/bin/env bash
# The test command (README): installs what is missing, lints, runs every test.
# Extra arguments go to pytest, e.g. `bash ci/test.sh -m "not slow"` for the fast unit tests only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh

# Debian packages the book's checks use, installed when missing and running as root: Chromium for the
# browser check (no browser download), npm for ci/vendor_js.sh (it fetches the pages' widget and MathJax
# JavaScript from the npm registry). Without them those checks skip or fail with a message saying so.
apt_updated=""
install_deb() { # install_deb COMMAND PACKAGE WHAT_NEEDS_IT [APT_OPTION...]
  command -v "$1" >/dev/null && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "note: $1 is missing (apt-get install -y $2, as root): $3"
    return 0
  fi
  echo "== installing $2 for $3"
  if [ -z "$apt_updated" ]; then apt-get update -qq && apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${@:4}" "$2" >/dev/null \
    || echo "$2 could not be installed: $3 will be skipped or fail"
}
install_deb chromium chromium "the browser check"
install_deb npm npm "vendoring the book's JavaScript (ci/vendor_js.sh)" --no-install-recommends

echo "== ruff"
python3 -m ruff check .
python3 -m ruff format --check .
bash ci/check_workflows.sh  # zizmor and actionlint on .github/workflows/
echo "== pytest"
python3 -m pytest "$@"
