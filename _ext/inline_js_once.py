"""Sphinx extension: write each inline <script> once per page (backport of sphinx-doc/sphinx#13402).

Sphinx 7.4 registers an inline script added with `app.add_js_file(None, body=...)` twice when the HTML
builder already exists: once as filename None, once more as filename "" when it prepares writing, and
its duplicate check sees two different scripts. Every page then declares sphinx-thebe's
`const THEBE_JS_URL` twice, and the browser throws "Identifier 'THEBE_JS_URL' has already been
declared". Sphinx 8.2 fixes it; Jupyter Book 1.x pins Sphinx 7, hence this. Delete it with that pin.
"""

from __future__ import annotations

import sphinx
from sphinx.builders.html import StandaloneHTMLBuilder


def setup(app):
    if sphinx.version_info < (8, 2):
        add_js_file = StandaloneHTMLBuilder.add_js_file

        def add_js_file_once(self, filename, **kwargs):
            # the same normalisation the builder applies to registry entries: None becomes ""
            return add_js_file(self, filename or "", **kwargs)

        StandaloneHTMLBuilder.add_js_file = add_js_file_once
    return {"parallel_read_safe": True, "parallel_write_safe": True}
