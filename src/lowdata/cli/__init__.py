"""The ``lowdata`` command, one module per group of commands, each command's options beside its handler.

- :mod:`.data`: ``encode`` (the data into the embedding cache, and how fast), ``download`` (MVTec AD),
  ``categories`` (of an MVTec-layout folder);
- :mod:`.study`: ``study`` (the sample-size study of one category), ``pollution`` (polluted training
  sets), ``refine`` (what SROC would remove from a folder), ``augment-preview`` (a policy's copies);
- :mod:`.product`: ``fit``, ``score`` and ``policy search``, the practitioner's workflow;
- :mod:`.book`: ``book`` (run the notebooks, build the book), ``verify`` (a run against the expected
  figures), ``publish`` (the built book and its tables);
- :mod:`.cache`: ``cache`` (list, prune, clear);
- :mod:`.common`: the options several commands share, declared once, and :func:`.common.report`, the one
  way a command prints.

Each handler checks its arguments, calls the library and prints through :func:`.common.report`. Errors
print one line, ``lowdata: error: ...``, and exit with status 2 (``LOWDATA_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import argparse
import sys
import warnings

from ..console import Parser, error_line, format_warning, show_warning
from ..core.errors import one_line
from ..core.quiet import debug as quiet_debug
from ..core.version import __version__
from .common import use_weights
from .data import add_encode, add_download, add_categories
from .study import add_study, add_augment_preview, add_refine, add_pollution, add_fitness_check
from .product import add_fit, add_policy, add_score
from .book import add_verify, add_publish, add_book
from .cache import add_cache


DESCRIPTION = ("Few-shot visual inspection with frozen ImageNet networks and data augmentation:\n"
               "the paper's study, its book, and fit/score for your own parts.")
COMMON = """the most common commands:
  lowdata book                   run the notebooks, build the book (make run)
  lowdata study --category mono  the sample-size study of one category
  lowdata fit GOOD --out MODEL   fit a model on a folder of good images
  lowdata score MODEL IMAGES     score new images: score, verdict, heatmaps
  lowdata COMMAND --help         a command's options, and what it writes
the user guide: the book's part "Using lowdata" (book/guide/)"""


def build_parser() -> argparse.ArgumentParser:
    """The ``lowdata`` command's parser: each command's options are declared in its own module."""
    p = Parser(prog="lowdata", description=DESCRIPTION, epilog=COMMON,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"lowdata {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_encode(sub)
    add_download(sub)
    add_categories(sub)
    add_study(sub)
    add_verify(sub)
    add_publish(sub)
    add_book(sub)
    add_augment_preview(sub)
    add_refine(sub)
    add_fit(sub)
    add_policy(sub)
    add_cache(sub)
    add_score(sub)
    add_pollution(sub)
    add_fitness_check(sub)
    return p


def short_help() -> str:
    """What ``lowdata`` alone prints: what it is and the most common commands."""
    return f"usage: lowdata [--version] COMMAND ...\n\n{DESCRIPTION}\n\n{COMMON}\n"


def main(argv: list[str] | None = None) -> int:
    Parser.argv = list(sys.argv[1:] if argv is None else argv)
    if not Parser.argv:  # no command: the short help, and the status of an argument error
        sys.stderr.write(short_help())
        return 2
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or an argument error, already said in one line (2)
        return exc.code if isinstance(exc.code, int) else 2
    args.argv = list(sys.argv[1:] if argv is None else argv)
    warnings.formatwarning = format_warning
    debug = quiet_debug()
    try:
        if hasattr(args, "backbone"):  # before any work; score knows its backbone from the model (cmd_score)
            use_weights(args, args.backbone)
        return args.func(args)
    except KeyboardInterrupt:
        print("lowdata: interrupted (finished cache entries are kept)", file=sys.stderr)
        return 130
    except Exception as exc:  # one line for the user; the traceback with LOWDATA_DEBUG=1
        if debug:
            raise
        print(f"lowdata: error: {one_line(error_line(exc))}", file=sys.stderr)
        return 2


def run() -> None:
    """The ``lowdata`` command: :func:`main`, with warnings printed above the progress bars (not inside them).
    Only here: a caller of :func:`main` (a test, a notebook) keeps its own way of catching warnings."""
    warnings.showwarning = show_warning
    sys.exit(main())
