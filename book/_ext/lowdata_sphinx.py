"""The book's own Sphinx extension (``_config.yml``: ``sphinx.local_extensions``).

Thebe off: Jupyter Book 1.0.4 always loads sphinx-thebe, whose configuration script ends up twice on
every page (``const THEBE_JS_URL`` declared twice: a console error on every page). The book executes
nothing in the browser (no launch buttons), so its scripts are left out of every page.

The PDF: when ``make pdf`` has put ``book/_extra/lowdata-book.pdf`` beside the site, the index page links to it
(and only then: no dead link in a book built without TeX).
"""

from pathlib import Path

PDF = Path("book") / "_extra" / "lowdata-book.pdf"
INDEX = "book/intro"


def _is_thebe(js) -> bool:
    body = getattr(js, "attributes", {}).get("body", "") or ""
    return "THEBE_JS_URL" in body or str(getattr(js, "filename", js) or "").endswith("sphinx-thebe.js")


def _drop_thebe(app, pagename, templatename, context, doctree):
    files = context.get("script_files")
    if files:
        context["script_files"] = [js for js in files if not _is_thebe(js)]


def _pdf_link(app, docname, source):
    if docname == INDEX and (Path(app.srcdir) / PDF).is_file():
        size = (Path(app.srcdir) / PDF).stat().st_size / 1e6
        source[0] += ("\n\n```{note}\nThe whole book is also one PDF: "
                      f'<a href="../{PDF.name}" download>{PDF.name}</a> ({size:.1f} MB, made by `make pdf`).\n```\n')


def _index_always_read(app, env, added, changed, removed):
    return [INDEX] if INDEX in env.found_docs else []  # the PDF may have come or gone since the last build


def setup(app):
    app.connect("html-page-context", _drop_thebe, priority=900)
    app.connect("source-read", _pdf_link)
    app.connect("env-get-outdated", _index_always_read)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
