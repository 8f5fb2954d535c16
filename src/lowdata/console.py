"""What the ``lowdata`` command says on the terminal besides its results: warnings (one line, numpy's
explained, printed above the progress bars), argument errors (one line in lowdata's words, no usage
block) and the one line of any error. Everything is escaped (:func:`lowdata.core.errors.one_line`)."""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from pathlib import Path

from .core.atomic import os_error_text
from .core.errors import LowdataError, one_line


def format_warning(message, category, filename, lineno, line=None):
    text = str(message)
    if issubclass(category, RuntimeWarning) and "encountered in" in text:  # numpy's floating-point warnings
        where = Path(filename)
        where = "/".join(where.parts[where.parts.index("lowdata"):]) if "lowdata" in where.parts else where.name
        text = (f"a computation went out of the range of floating-point numbers (numpy: {text}, in {where}:{lineno}); "
                "the numbers that follow may be wrong: please report it, with the command, as a lowdata defect")
    return f"lowdata: warning: {one_line(text)}\n"


def show_warning(message, category, filename, lineno, file=None, line=None):
    """A warning printed above a progress bar, not into it."""
    from tqdm import tqdm

    tqdm.write(format_warning(message, category, filename, lineno).rstrip("\n"), file=file or sys.stderr)


KINDS = {"int": "a whole number", "float": "a number", "Path": "a path"}


def argument_error(message: str, argv: list[str]) -> str:
    """argparse's error, in lowdata's words: ``--budget: 'abc' is not a whole number``; a hint when a file name
    that starts with ``-`` was taken for an option."""
    m = re.fullmatch(r"argument (\S+): invalid choice: '(.*)' \(choose from (.*)\)", message)
    if m:  # an unknown command or choice: the closest one suggested
        choices = [c.strip().strip("'") for c in m.group(3).split(",")]
        close = difflib.get_close_matches(m.group(2), choices, n=1, cutoff=0.5)
        what = "command" if m.group(1) in ("command", "COMMAND") else "choice"
        return (f"{m.group(1).split('/')[-1]}: unknown {what} {m.group(2)!r}"
                + (f"; did you mean {close[0]}?" if close else "") + f" (one of {', '.join(choices)})")
    m = re.fullmatch(r"argument (\S+): invalid (\w+) value: (.*)", message)
    if m:
        return f"{m.group(1).split('/')[-1]}: {m.group(3)} is not {KINDS.get(m.group(2), 'a valid ' + m.group(2))}"
    m = re.fullmatch(r"argument (\S+): (.*)", message)
    text = f"{m.group(1).split('/')[-1]}: {m.group(2)}" if m else message
    named = argv[:argv.index("--")] if "--" in argv else argv
    if any(a.startswith("-") and "=" not in a and ("/" in a or "." in a[2:] or os.path.exists(a)) for a in named):
        text += " (use -- before file names that start with -: lowdata score MODEL -- -part.png)"
    return text


class Parser(argparse.ArgumentParser):
    """argparse with lowdata's errors: one line, ``lowdata: error: ...``, exit status 2; the usage only with
    ``--help``."""

    argv: list[str] = []

    def error(self, message):
        command = self.prog.removeprefix("lowdata").strip()
        sys.stderr.write(f"lowdata: error: {one_line(argument_error(message, self.argv))}"
                         f" (see lowdata {command + ' ' if command else ''}--help)\n")
        sys.exit(2)


def error_line(exc: BaseException) -> str:
    """The one line printed for an error: the message of lowdata's own errors; for others what happened,
    where, and how to see more."""
    if isinstance(exc, LowdataError):
        return str(exc)  # on one line, escaped: main's one_line
    if isinstance(exc, MemoryError):
        return ("out of memory; use fewer or smaller images, a smaller --input-size, or a machine with more memory "
                "(set LOWDATA_DEBUG=1 for the traceback)")
    if isinstance(exc, OSError):
        where = exc.filename if exc.filename is not None else ""
        return (f"{where}: " if where else "") + f"{os_error_text(exc)} (set LOWDATA_DEBUG=1 for the traceback)"
    text = " ".join(str(exc).split())
    return (f"unexpected {type(exc).__name__}" + (f": {text[:300]}" if text else "")
            + "; this is a lowdata defect: set LOWDATA_DEBUG=1 for the traceback and report it")
