#!/usr/bin/env bash
# Installs what the book and the tests need, when it is missing. Quick when all is there.
# Sourced or run from any folder; works on the checkout it lives in.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

python=${PYTHON:-python3}
if ! "$python" -c "import torch, torchvision, jupyter_book, papermill, playwright, seaborn, ipywidgets, tqdm" 2>/dev/null; then
  echo "== installing requirements (first run only)"
  "$python" -m pip install -q -r requirements.txt -c ci/constraints.txt
fi
# Always (re)point the editable install at this checkout: another clone may have been installed before.
installed=$("$python" -c "import resnet_repro, pathlib; print(pathlib.Path(resnet_repro.__file__).parent.parent)" 2>/dev/null || true)
if [ "$installed" != "$repo" ]; then
  echo "== installing resnet_repro from $repo"
  "$python" -m pip install -q --no-deps -e .
fi
# papermill runs notebooks with the kernel their metadata names.
if ! "$python" -m jupyter kernelspec list 2>/dev/null | grep -q '^ *python3 '; then
  "$python" -m ipykernel install --user --name python3 >/dev/null
fi
