"""``python -m lowdata.cli``: the ``lowdata`` command."""

from . import run

run()
