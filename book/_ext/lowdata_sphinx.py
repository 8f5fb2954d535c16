"""The book's own Sphinx extension (``_config.yml``: ``sphinx.local_extensions``).

Thebe off: Jupyter Book 1.0.4 always loads sphinx-thebe, whose configuration script ends up twice on
every page (``const THEBE_JS_URL`` declared twice: a console error on every page). The book executes
nothing in the browser (no launch buttons), so its scripts are left out of every page.
"""


def _is_thebe(js) -> bool:
    body = getattr(js, "attributes", {}).get("body", "") or ""
    return "THEBE_JS_URL" in body or str(getattr(js, "filename", js) or "").endswith("sphinx-thebe.js")


def _drop_thebe(app, pagename, templatename, context, doctree):
    files = context.get("script_files")
    if files:
        context["script_files"] = [js for js in files if not _is_thebe(js)]


def setup(app):
    app.connect("html-page-context", _drop_thebe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
