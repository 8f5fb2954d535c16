"""The book's own Sphinx extension (``_config.yml``: ``sphinx.local_extensions``).

Thebe off: Jupyter Book 1.0.4 always loads sphinx-thebe, whose configuration script ends up twice on
every page (``const THEBE_JS_URL`` declared twice: a console error on every page). The book executes
nothing in the browser (no launch buttons), so its scripts are left out of every page.

The command-line reference (``book/guide/command-line.md``): made from ``lowdata``'s argument parser each time
the book is built, one section per command, so the page cannot drift from the code.

The PDF: when ``make pdf`` has put ``book/_extra/lowdata-book.pdf`` beside the site, the index page links to it
(and only then: no dead link in a book built without TeX).
"""

import os
from pathlib import Path

PDF = Path("book") / "_extra" / "lowdata-book.pdf"
INDEX = "book/intro"
COMMANDS = "book/guide/command-line"
MARKER = "<!-- lowdata-commands"


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


def _subcommands(parser):
    """(name, parser) of each command, a command's own commands after it (``policy search``, ``cache prune``)."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                for inner, subsub in _subcommands(sub):
                    yield f"{name} {inner}", subsub


def command_reference() -> str:
    """Every command's ``--help``, as Markdown: a section per command (lowdata's own parser, at build time)."""
    os.environ["COLUMNS"] = "80"  # argparse wraps at the terminal's width: the same page on every machine
    from lowdata.cli import build_parser

    parser = build_parser()
    blocks = ["## `lowdata`\n\n```text\n" + parser.format_help().rstrip() + "\n```\n"]
    for name, sub in _subcommands(parser):
        blocks.append(f"## `lowdata {name}`\n\n```text\n{sub.format_help().rstrip()}\n```\n")
    return "\n".join(blocks)


def _commands(app, docname, source):
    if docname == COMMANDS and MARKER in source[0]:
        head, _, tail = source[0].partition(MARKER)
        source[0] = head + command_reference() + tail.split("-->", 1)[-1]


def _index_always_read(app, env, added, changed, removed):
    # the PDF may have come or gone since the last build; the commands' help is the code's, made anew each build
    return [d for d in (INDEX, COMMANDS) if d in env.found_docs]


def setup(app):
    app.connect("html-page-context", _drop_thebe, priority=900)
    app.connect("source-read", _pdf_link)
    app.connect("source-read", _commands)
    app.connect("env-get-outdated", _index_always_read)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
