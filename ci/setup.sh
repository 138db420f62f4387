#!/usr/bin/env bash
# Installs what the book and the tests need, when it is missing. Quick when all is there.
# Installs into the environment of $PYTHON (default python3: the virtual environment you activated, or
# the machine's Python). Run from any folder; works on the checkout it lives in.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
python=${PYTHON:-python3}

# Asked from outside the checkout (cd /): from its root, `import resnet_repro` finds the source folder
# whether or not the package is installed, but the chapters run in book/ and the tests' kernels elsewhere.
outside() { (cd / && "$python" "$@"); }

if ! outside -c "import torch, torchvision, numpy, pandas, matplotlib, seaborn, tqdm, ipywidgets, papermill, \
ipykernel, nbformat, jupyter_book, pytest, ruff, playwright" 2>/dev/null; then
  if outside -c 'import sys, sysconfig, pathlib
managed = pathlib.Path(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED").exists()
sys.exit(managed and sys.prefix == sys.base_prefix)'; then
    echo "== installing requirements into $(outside -c 'import sys; print(sys.prefix)') (first run only)"
    started=$SECONDS
    "$python" -m pip install -q -r "$repo/requirements.txt" -c "$repo/ci/constraints.txt"
    echo "== requirements installed in $((SECONDS - started)) s"
  else
    echo "setup.sh: $python is the system's Python, which pip does not install into (PEP 668); make and" \
      "activate a virtual environment first: python3 -m venv ~/.venvs/resnet-repro &&" \
      ". ~/.venvs/resnet-repro/bin/activate" >&2
    exit 1
  fi
fi
# Always (re)point the editable install at this checkout: another clone may have been installed before.
installed=$(outside -c "import resnet_repro, pathlib; print(pathlib.Path(resnet_repro.__file__).resolve().parent.parent)" \
  2>/dev/null || true)
if [ "$installed" != "$repo" ]; then
  echo "== installing resnet_repro from $repo (editable)"
  "$python" -m pip install -q --no-deps -e "$repo"
fi

# Debian packages the book and its checks use, installed when missing and running as root: npm for
# ci/vendor_js.sh (it fetches the pages' widget and MathJax JavaScript from the npm registry) and
# Chromium for the browser check (no browser download). Without them the build fails, and the browser
# check skips, with a message saying so.
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
install_deb npm npm "vendoring the book's JavaScript (ci/vendor_js.sh)" --no-install-recommends
install_deb chromium chromium "the browser check"
