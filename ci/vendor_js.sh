#!/usr/bin/env bash
# Vendors the JavaScript the static book loads, so its pages work without a CDN (offline CI, strict
# CSP): RequireJS and the ipywidgets html-manager (myst-nb loads them from cdnjs/jsdelivr by default)
# for the depth explorer's slider, and MathJax (Sphinx loads it from jsdelivr) for the equations.
# _config.yml points `nb_ipywidgets_js` and `mathjax_path` at these copies (ci/build_book.sh copies DEST to
# book/_widgets of the book's copy it builds from); the committed _ext/static/widgets-setup.js (loaded
# between RequireJS and the widgets) makes them work together.
#
# Usage: bash ci/vendor_js.sh [DEST]   (default: _build/vendored-js, git-ignored)
# Fetches pinned npm packages with `npm pack`, checks each tarball's sha512 against the pins below
# and copies what the pages load into DEST/jupyter-widgets/ and DEST/mathjax/.
# A no-op when DEST already holds these versions.
#
# DEST must not be (or sit inside) a folder named `_static` at the book root: Jupyter Book adds every
# .js file found there to every page, which would load the AMD and non-AMD bundles together.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$repo/_build/vendored-js}"

# name@version and the registry's sha512 integrity of its tarball
html_manager="@jupyter-widgets/html-manager@1.0.6"  # the version myst-nb 1.x loads, for ipywidgets 8
html_manager_sha512="sha512-+Mn+Ra8wyIHrYaUpfmf9A3dsLkt/NuwzPQN8sthdxBD35VV5cOJbpmgMhNR27n/rmP3mKyEe0PWCJrtZrXTXDQ=="
requirejs="requirejs@2.3.6"
requirejs_sha512="sha512-ipEzlWQe6RK3jkzikgCupiTbTvm4S0/CAU5GlgptkN5SO6F3u0UD0K18wy6ErDqiCyP4J4YYe1HuAShvsxePLg=="
mathjax="mathjax@3.2.2"  # Sphinx 7 loads mathjax@3 (tex-mml-chtml.js)
mathjax_sha512="sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw=="

layout="layout-3"  # bump when what this script writes changes, so old copies are replaced
stamp="$html_manager $requirejs $mathjax $layout"
if [ -f "$dest/VERSIONS" ] && [ "$(cat "$dest/VERSIONS")" = "$stamp" ]; then
  echo "browser JS already vendored in $dest ($stamp)"
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "vendor_js.sh: npm is needed to fetch $stamp (apt-get install -y npm)" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Downloads package $1 into $work/<name>/package/ and fails unless its integrity equals $2.
fetch() {
  local spec="$1" want="$2" name got
  name="$(basename "${spec%@*}")"
  mkdir -p "$work/$name"
  got="$(cd "$work/$name" && npm pack --silent --json "$spec" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["integrity"])')"
  if [ "$got" != "$want" ]; then
    echo "vendor_js.sh: $spec has integrity $got, expected $want" >&2
    exit 1
  fi
  tar -xzf "$work/$name"/*.tgz -C "$work/$name"
}

fetch "$html_manager" "$html_manager_sha512"
fetch "$requirejs" "$requirejs_sha512"
fetch "$mathjax" "$mathjax_sha512"

rm -rf "$dest"
mkdir -p "$dest/jupyter-widgets" "$dest/mathjax/output"

# embed-amd.js is self-contained apart from the icon fonts it references; the non-AMD bundle
# (embed.js and its numbered chunks), libembed-amd.js and the source maps are never loaded.
dist="$work/html-manager/package/dist"
cp "$dist/embed-amd.js" "$dist"/*.woff "$dist"/*.woff2 "$dist"/*.ttf "$dist"/*.eot "$dist"/*.svg \
  "$dest/jupyter-widgets/"
cp "$work/html-manager/package/LICENSE" "$dest/jupyter-widgets/LICENSE.html-manager"
cp "$work/requirejs/package/require.js" "$dest/jupyter-widgets/"  # its license is in the file header

# tex-mml-chtml.js plus what it loads on demand: TeX extensions (autoload), CHTML fonts, the
# accessibility menu and its speech engine. The other combined bundles and SVG output are unused.
es5="$work/mathjax/package/es5"
cp "$es5/tex-mml-chtml.js" "$work/mathjax/package/LICENSE" "$dest/mathjax/"
cp -r "$es5/input" "$es5/a11y" "$es5/ui" "$es5/sre" "$dest/mathjax/"
cp -r "$es5/output/chtml" "$es5/output/chtml.js" "$dest/mathjax/output/"

echo "$stamp" >"$dest/VERSIONS"
echo "vendored $stamp into $dest ($(du -sh "$dest" | cut -f1))"
