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
import subprocess
import sys
from contextlib import contextmanager

from .errors import printable

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


#: the filter between file descriptor 2 and the terminal: a process of its own, so that what a native library
#: writes just before it aborts the process still gets through
_FILTER = """import re, sys
notes = [re.compile(p) for p in sys.argv[1:]]
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    text = line.decode(errors="replace")
    if text.strip() and not any(p.search(text) for p in notes):
        out.write(line if line.endswith(b"\\n") else line + b"\\n")
        out.flush()
"""


@contextmanager
def quiet_native_stderr():
    """Send file descriptor 2 (what C and C++ code writes) through a filter process while the block runs: every
    line that is not a known start-up note (:data:`NOISE`) reaches the terminal at once, whole, even when the
    library then aborts this process. Python's ``sys.stderr`` written meanwhile passes the same way. Nothing
    is filtered when :func:`verbose`, or when fd 2 cannot be duplicated or the filter cannot start."""
    if verbose():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        read_end, write_end = os.pipe()
        filt = subprocess.Popen([sys.executable, "-I", "-S", "-c", _FILTER, *(p.pattern for p in NOISE)],
                                stdin=read_end, stdout=saved, stderr=saved)
        os.close(read_end)
    except OSError:
        os.close(saved)
        yield
        return
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(saved, 2)  # the pipe's last write end closes: the filter reads its end and exits
        try:
            filt.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a child of ours still holds the pipe: let the filter run on
            pass
        os.close(saved)


def one_line_warning(message, category, filename, lineno, line=None) -> str:
    """``warnings.formatwarning`` for pages: ``UserWarning: message``, on one line, without the source path."""
    text = printable(" ".join(str(message).split()))
    return f"{category.__name__}: {text}\n"


def tensorflow():
    """``import tensorflow``, with its start-up notes kept from the console (:func:`quiet_native_stderr`)."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with quiet_native_stderr():
        import tensorflow as tf

        # devices are looked for at the first operation, not at the import: where a CUDA library is installed without
        # a usable GPU, that is when TensorFlow logs "failed call to cuInit" (an error line, for a CPU-only run)
        tf.config.list_physical_devices()
    return tf
