"""The one exception type users see.

Everything that is the user's input being wrong (a missing folder, an unreadable image, an unknown
backbone, weights that cannot be found) raises :class:`LowdataError` with a message that names the
file or value. The ``lowdata`` command prints that message alone, with no traceback, and exits 2.
"""


class LowdataError(Exception):
    """A problem with the user's input or environment, explained in the message."""
