"""What several commands share: the options declared once (backbone, cache, data, scheduler, detector
parameters, SROC, progress, --force), reading them, and the one way a command prints (:func:`report`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ..scheduling import connect
from ..core.errors import printable_block
from ..data.sources import SOURCES, load_category, source_of
from ..detectors.params import describe_params, parse_assignments
from ..detectors.registry import method_names, method_spec
from ..experiments.refine import RULES as SROC_RULES, sroc_config as make_sroc_config
from ..features.backbones import DEFAULT_BACKBONE, backbone_names
from ..features.efficientnet_b4 import use_b4_weights

CACHE_HELP = "embedding cache folder (default $LOWDATA_CACHE, else data/cache)"


def report(*parts, err: bool = False, float_format=None) -> None:
    """Print what a command has to say, the one way every command prints: each part a line, a block of lines or
    a table (a DataFrame, printed whole; its index only when it means something, not 0, 1, 2...), made
    printable (no control character of a file name reaches the terminal); ``err``: to standard error (beside a
    CSV or JSON on standard output)."""
    with pd.option_context("display.max_rows", 10000, "display.width", 200, "display.max_colwidth", 100):
        for part in parts:
            if isinstance(part, pd.DataFrame):
                part = part.to_string(index=not isinstance(part.index, pd.RangeIndex), float_format=float_format)
            print(printable_block(part), file=sys.stderr if err else sys.stdout, flush=True)


# --- the options several commands take ----------------------------------------------------------------------

def add_backbone_args(p: argparse.ArgumentParser, *, weights_only: bool = False) -> None:
    """``--backbone``, ``--input-size`` and ``--weights`` (only ``--weights`` for a command whose backbone is
    the model's)."""
    if not weights_only:
        p.add_argument("--backbone", default=DEFAULT_BACKBONE, choices=backbone_names(),
                       help=f"feature extractor (default {DEFAULT_BACKBONE})")
        p.add_argument("--input-size", type=int, help="input size in pixels (default: the backbone's, 380 for "
                                                      "the paper's)")
    p.add_argument("--weights", type=Path, help="efficientnet-b4 only: a local copy of Keras' efficientnetb4_notop.h5 "
                                                "(checked by md5; default $LOWDATA_B4_WEIGHTS or Keras' download)")


def add_cache_arg(p: argparse.ArgumentParser, help: str = CACHE_HELP, **kwargs) -> None:
    p.add_argument("--cache", type=Path, help=help, **kwargs)


def add_progress_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_force_arg(p: argparse.ArgumentParser, what: str = "--out") -> None:
    p.add_argument("--force", action="store_true", help=f"replace {what} if it exists")


def add_scheduler_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scheduler", help="where tasks run: local (default: a Dask LocalCluster sized to this machine), "
                                       "tcp://HOST:PORT (an existing Dask cluster sharing the cache and data "
                                       "folders) or none (serial, in this process); default $LOWDATA_SCHEDULER "
                                       "or local")
    p.add_argument("--workers", type=int, help="local: worker processes (default: one per two cores)")


def add_data_args(p: argparse.ArgumentParser, *, category_required: bool = True) -> None:
    p.add_argument("--data", type=Path, help="a data folder: MVTec AD, MPDD, BTAD, VisA, MVTec AD 2, MVTec 3D-AD or "
                                             "LOCO layout, or a good/bad folder of your own (default: the embedded "
                                             "ELPV data)")
    p.add_argument("--source", choices=list(SOURCES), help="the data set's layout (default: recognised from the "
                                                           "folder, see lowdata categories; elpv without --data)")
    p.add_argument("--category", required=category_required, help="e.g. bottle (MVTec) or mono / poly (ELPV)")


def add_policy_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--policy", help="augmentation policy: a Table 4 category, 'default', or a JSON file "
                                    "(default: the category's Table 4 policy, else 'default')")


def add_param_args(parser: argparse.ArgumentParser) -> None:
    """``--param NAME=VALUE`` (repeated) for any detector's parameter, and the flags detectors declare as
    aliases (a parameter declared with ``flag``: ``--NAME V`` = ``--param NAME=V``); their help is built from the
    declarations."""
    lines = " | ".join(describe_params(m, method_spec(m).parameters, long=True) for m in method_names()
                       if any(not p.fixed for p in method_spec(m).parameters))
    parser.add_argument("--param", action="append", metavar="NAME=VALUE",
                        help=f"a detector parameter, for the methods that have it (repeat for several). {lines}")
    for m in method_names():
        for p in method_spec(m).parameters:
            if p.flag and f"--{p.name}" not in parser._option_string_actions:
                parser.add_argument(f"--{p.name}", metavar="VALUE", help=f"{m}: {p.help} (= --param {p.name}=VALUE)")


def add_sroc_args(q: argparse.ArgumentParser) -> None:
    """The options of SROC (refine, pollution), with the backbone, cache and progress options."""
    q.add_argument("--folds", type=int, default=5, help="out-of-fold scoring folds (default 5)")
    q.add_argument("--rule", default="zscore", choices=list(SROC_RULES), help="removal rule (default zscore)")
    q.add_argument("--threshold", type=float,
                   help="zscore: robust z cut (default 3); quantile: q (default 0.9); chi2: alpha (default 0.001)")
    q.add_argument("--rounds", type=int, default=5, help="most refinement rounds (default 5)")
    q.add_argument("--scorer", help="detector that judges the training images (default: the method)")
    q.add_argument("--seed", type=int, default=0)
    add_cache_arg(q)
    add_backbone_args(q)
    add_progress_arg(q)


# --- reading them -------------------------------------------------------------------------------------------

def use_weights(args, backbone: str | None) -> None:
    """``--weights PATH`` (:func:`lowdata.features.efficientnet_b4.use_b4_weights`)."""
    if getattr(args, "weights", None) is not None:
        use_b4_weights(args.weights, backbone)


def wanted(args) -> list[str] | None:
    """``--categories a,b``: the categories asked for (``None``: all)."""
    return [c.strip() for c in args.categories.split(",") if c.strip()] if args.categories else None


def map_methods() -> list[str]:
    """The registered detectors that give anomaly maps (and heatmaps)."""
    return [m for m in method_names() if method_spec(m).gives_maps]


def given_params(args) -> dict[str, str]:
    """The detector parameters of the command line: ``--param`` items, then the alias flags."""
    given = parse_assignments(args.param)
    for m in method_names():
        for p in method_spec(m).parameters:
            if p.flag and getattr(args, p.name, None) is not None:
                given[p.name] = getattr(args, p.name)
    return given


def category_data(args):
    """The category of ``--data``/``--source``/``--category`` (the source, unless given, by the folder's layout)."""
    source = args.source or source_of(args.data, args.category)
    # absolute paths: tasks may run in other processes or on other machines, from another folder
    return load_category(source, args.category, root=None if args.data is None else Path(args.data).resolve())


def scheduler(args):
    """The Dask runner of ``--scheduler`` (checked workers; the dashboard's address printed)."""
    runner = connect(args.scheduler, cache_dir=args.cache, workers=args.workers)
    report(f"scheduler: {runner.describe()}")
    return runner


def sroc_config(args):
    """The SROC settings of :func:`add_sroc_args`' options."""
    return make_sroc_config(folds=args.folds, rule=args.rule, threshold=args.threshold, max_rounds=args.rounds,
                            scorer=args.scorer, seed=args.seed)


def finite_records(df: pd.DataFrame) -> list[dict]:
    """The rows as JSON objects, a number that is not finite (a ratio past the float range) as null: JSON
    has no Infinity."""
    return [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
            for row in df.to_dict(orient="records")]
