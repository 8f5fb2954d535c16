"""The one exception type users see.

Everything that is the user's input being wrong (a missing folder, an unreadable image, an unknown
backbone, weights that cannot be found) raises :class:`LowdataError` with a message that names the
file or value. The ``lowdata`` command prints that message alone, with no traceback, and exits 2.
"""


class LowdataError(Exception):
    """A problem with the user's input or environment, explained in the message."""


def printable(text) -> str:
    """``text`` with every character a terminal would act on escaped as Python writes it (``\\x1b``, ``\\r``,
    ``\\x00``, ``\\u202e``): names, labels and values come from files, folders and arguments, and must not
    drive the terminal (colour, title, a line written over another)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def one_line(text) -> str:
    """``text`` on one line (its line breaks become spaces), control characters escaped: what lowdata prints
    for an error or a warning."""
    return printable(" ".join(str(text).split("\n")))
