"""A quiet console: what native libraries print at start-up, kept from the user unless they ask.

TensorFlow prints, from C++ and whatever ``TF_CPP_MIN_LOG_LEVEL`` says, absl's "All log messages before
absl::InitializeLog() ..." and oneDNN's "custom operations are on" lines when it is imported (twice:
once per library it loads). :func:`quiet_native_stderr` captures the process's file descriptor 2 around
such a call and prints back every line that is not one of those known notes (:data:`NOISE`), so a real
error of a native library still reaches the terminal, whole. ``LOWDATA_DEBUG=1`` (or ``--verbose`` of
the commands that have it) shows everything.

Python's own warnings, in commands and in the book's pages, are one line each (:func:`one_line_warning`):
no source path of the machine that ran them.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from contextlib import contextmanager

#: start-up notes of TensorFlow and its libraries that say nothing to our users
NOISE = tuple(re.compile(p) for p in (
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$",
    r"\] oneDNN custom operations are on\.",
    r"cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized to use available CPU instructions",
    r"^To enable the following instructions: .* in other operations, rebuild TensorFlow",
    r"Unable to register cu(DNN|FFT|BLAS) factory",
    r"computation placer already registered",
    r"TF-TRT Warning: Could not find TensorRT",
    r"failed call to cuInit",
    r"Could not find cuda drivers on your machine",
    r"^E0000 00:00:\d+\.\d+ +\d+ cuda_",
))


def debug() -> bool:
    """``LOWDATA_DEBUG`` is set (and not 0): show everything, tracebacks included."""
    return os.environ.get("LOWDATA_DEBUG", "") not in ("", "0")


def verbose() -> bool:
    """Show what native libraries and kernels print: ``LOWDATA_DEBUG`` or ``LOWDATA_VERBOSE`` is set (``lowdata
    book --verbose`` sets the latter, for its kernels too)."""
    return debug() or os.environ.get("LOWDATA_VERBOSE", "") not in ("", "0")


def is_noise(line: str) -> bool:
    return any(p.search(line) for p in NOISE)


@contextmanager
def quiet_native_stderr():
    """Capture file descriptor 2 (what C and C++ code writes) while the block runs, then print back every
    line that is not a known start-up note (:data:`NOISE`). Python's ``sys.stderr`` written meanwhile is
    kept too, in order. Nothing is captured when :func:`verbose`, or when fd 2 cannot be duplicated."""
    if verbose():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [line for line in tmp.read().decode(errors="replace").splitlines()
                    if line.strip() and not is_noise(line)]
            if kept:
                os.write(2, ("\n".join(kept) + "\n").encode())


def one_line_warning(message, category, filename, lineno, line=None) -> str:
    """``warnings.formatwarning`` for pages: ``UserWarning: message``, on one line, without the source path."""
    text = " ".join(str(message).split())
    return f"{category.__name__}: {text}\n"


def tensorflow():
    """``import tensorflow``, with its start-up notes kept from the console (:func:`quiet_native_stderr`)."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with quiet_native_stderr():
        import tensorflow as tf
    return tf
