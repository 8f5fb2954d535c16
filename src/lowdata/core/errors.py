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


def quoted(value, limit: int = 80) -> str:
    """``value`` as an error names it: quoted as Python writes it (control characters escaped), and at most
    ``limit`` characters of it, then how long it is (a 10 MB field is not echoed whole)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return f"a whole number of about {int(value.bit_length() * 0.30103) + 1:,} digits"
    try:
        text = repr(value) if isinstance(value, str) else printable(repr(value))
    except RecursionError:  # nested too deep to write out
        return f"a {type(value).__name__} too deeply nested to show"
    except ValueError:  # it holds a whole number of more than 4300 digits
        return f"a {type(value).__name__} holding a number too long to show"
    if len(text) <= limit:
        return text
    size = f"{len(value):,} characters" if isinstance(value, str) else f"{len(text):,} characters as written"
    return f"{text[:limit - 3]}... ({size})"


def printable_block(text) -> str:
    """A table or a block of lines as the terminal shows it: each line :func:`printable` (the line breaks kept)."""
    return "\n".join(printable(line) for line in str(text).split("\n"))
