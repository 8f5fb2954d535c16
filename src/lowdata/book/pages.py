"""What an executed notebook becomes before the book shows it, and the check that no page shows the
building machine's folders.

:func:`finish_page` runs on every page the runner executes: papermill's injected parameter cell is
hidden from readers (tag ``remove-cell``), the page's first heading becomes its title, a failed study gets
a warning under it, and every absolute folder of this run (:func:`path_labels`: the book's root, the
repository, the data, results and cache folders, the home folder) is written relative to the
repository or as a placeholder (``$MVTEC_ROOT``, ``<cache_dir>``), in outputs, error messages and the
parameter cell alike. :func:`machine_paths` looks for any that is left in the built HTML.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from ..core.atomic import atomic_path
from ..data.roots import env_name

REPO = Path(__file__).resolve().parents[3]  # src/lowdata/book/pages.py -> the repository (the runner's too)
#: parameters naming folders, and how a page shows them when they are not under the repository
PLACEHOLDERS = {"data_root": "$MVTEC_ROOT", "out_dir": "<out_dir>", "results_dir": "<results_dir>",
                "cache_dir": "<cache_dir>", "run_file": "<run_file>"}


def data_placeholder(source: str | None) -> str:
    """How a page shows a data root outside the repository: ``$MVTEC_ROOT`` for MVTec AD (or an unknown source),
    ``$LOWDATA_VISA_ROOT`` for VisA, and so on (:func:`lowdata.data.roots.env_name`)."""
    return PLACEHOLDERS["data_root"] if source in (None, "", "mvtec", "elpv") else f"${env_name(source)}"


def _rel(path: Path, root: Path) -> str | None:
    try:
        rel = path.relative_to(root)
    except ValueError:
        return None
    return "." if rel == Path(".") else rel.as_posix()


def path_labels(parameters: dict, root: str | Path, data_roots: dict[str, str | None] | None = None) -> list[tuple[str, str]]:
    """(absolute folder, how a page shows it), longest first: the folders named by ``parameters``, the run's
    ``data_roots`` (folder -> its source: every root a page may name, in the run's command for one), the book's
    ``root``, the repository, the virtual environment and the home folder."""
    given = Path(root).absolute()
    root = given.resolve()
    named, forced = [], {}
    for key, value in parameters.items():
        if isinstance(value, str) and key == "data_root" and not os.path.isabs(value) and "=" in value:
            source, _, value = value.partition("=")  # SOURCE=FOLDER (lowdata.data.roots.read_root)
            forced[value] = source
        if isinstance(value, str) and os.path.isabs(value):
            named.append((key, value))
    known = {**(data_roots or {}), **forced}  # a root's source, where the run or the parameter says it
    labels: dict[str, str] = {}

    def add(path: Path, label: str) -> None:  # as given and as resolved: a page may show either
        for form in (str(Path(os.path.normpath(path))), str(path.resolve())):
            if form not in ("/", "") and form not in labels:
                labels[form] = label

    for key, value in named:
        path = Path(value)
        for base in (root, REPO):
            rel = _rel(path.resolve(), base)
            if rel is not None:
                add(path, rel)
                break
        else:
            add(path, data_placeholder(known.get(value) or parameters.get("heat_source"))
                if key == "data_root" else PLACEHOLDERS.get(key, f"<{key}>"))
    for folder, source in known.items():
        path = Path(folder)
        if os.path.isabs(folder) and not any(_rel(path.resolve(), b) is not None for b in (root, REPO)):
            add(path, data_placeholder(source))
    venv = Path(sys.prefix)
    for base, label in ((given, "."), (REPO, "."), (venv, _rel(venv.resolve(), REPO) or "$VIRTUAL_ENV"),
                        (Path.home(), "~")):
        add(base, label)
    return sorted(labels.items(), key=lambda kv: -len(kv[0]))


def _pattern(path: str) -> str:
    """``path`` as a whole folder name: not inside another path or address (``/x/data`` in ``/x/src/data``
    or ``https://host/data``), not a prefix of a longer name (``/x/res`` of ``/x/results``)."""
    return r"(?<![\w.~$/:-])" + re.escape(path) + r"(/|(?![\w-]|\.\w))"


def relabel(text: str, labels: list[tuple[str, str]]) -> str:
    """``text`` with every absolute folder of ``labels`` replaced (``/x/repo/data/results`` ->
    ``data/results``, ``/x/repo`` -> ``.``)."""
    for path, label in labels:
        if path in text:
            text = re.sub(_pattern(path), lambda m: ("" if label == "." else label + "/") if m.group(1) else label,
                          text)
    return text


def _relabel_outputs(cell, labels) -> None:
    for out in cell.get("outputs", []):
        if "text" in out and isinstance(out["text"], str):
            out["text"] = relabel(out["text"], labels)
        for mime, value in (out.get("data") or {}).items():
            if mime.startswith("text/") and isinstance(value, str):
                out["data"][mime] = relabel(value, labels)
        if out.get("output_type") == "error":
            out["evalue"] = relabel(out.get("evalue", ""), labels)
            out["traceback"] = [relabel(t, labels) for t in out.get("traceback", [])]


def finish_page(page: Path, labels: list[tuple[str, str]], title: str | None = None,
                failure: str | None = None) -> None:
    """Make the executed notebook ``page`` a page for readers (see the module's text); written atomically."""
    import nbformat  # lazy, with papermill

    nb = nbformat.read(page, as_version=4)
    for cell in nb.cells:
        tags = list(cell.metadata.get("tags", []))
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = tags + ["remove-cell"]
        if cell.cell_type == "code" and "injected-parameters" in tags:
            cell.source = relabel(cell.source, labels)
        if cell.cell_type == "markdown":
            cell.source = relabel(cell.source, labels)
        _relabel_outputs(cell, labels)
    pm = nb.metadata.get("papermill", {})  # where papermill read and wrote the page, with what
    for key in ("input_path", "output_path", "cwd"):
        if isinstance(pm.get(key), str):
            pm[key] = relabel(pm[key], labels)
    for key, value in (pm.get("parameters") or {}).items():
        if isinstance(value, str):
            pm["parameters"][key] = relabel(value, labels)
    if title is not None:
        first = next(c for c in nb.cells if c.cell_type == "markdown")
        lines = first.source.split("\n")
        first.source = "\n".join([f"# {title}"] + lines[1:])
        if failure:
            note = nbformat.v4.new_markdown_cell(f"```{{warning}}\nThis study failed, so its results are missing "
                                                 f"from the summary tables and figures:\n\n"
                                                 f"`{relabel(failure, labels)}`\n```")
            nb.cells.insert(nb.cells.index(first) + 1, note)
    with atomic_path(page) as tmp:
        nbformat.write(nb, tmp)


def relabel_files(folder: Path, labels: list[tuple[str, str]], pattern: str = "*.csv") -> None:
    """The page's tables (:mod:`lowdata.book.tables`) relabelled like the page; rewritten atomically."""
    for f in sorted(Path(folder).glob(pattern)):
        text = f.read_text()
        new = relabel(text, labels)
        if new != text:
            with atomic_path(f) as tmp:
                Path(tmp).write_text(new)


def machine_paths(html: str | Path, folders: list[str]) -> list[tuple[str, str]]:
    """(file, the text around it) for every built page (``.html``, and the notebooks and sources it
    offers for download) under ``html`` that contains one of the absolute ``folders``."""
    html = Path(html)
    folders = sorted({str(Path(f)) for f in folders if f and str(Path(f)) not in ("/", ".")}, key=len, reverse=True)
    found = []
    for f in sorted(html.rglob("*")):
        if f.suffix not in (".html", ".ipynb", ".md", ".txt", ".csv") or not f.is_file():
            continue
        text = f.read_text(errors="replace")
        for folder in folders:
            m = re.search(_pattern(folder), text) if folder in text else None
            if m:
                i = m.start()
                found.append((f.relative_to(html).as_posix(), " ".join(text[max(0, i - 40):i + len(folder) + 40].split())))
                break
    return found
