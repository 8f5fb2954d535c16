"""``lowdata cache``: what the embedding cache holds and where; prune or clear it."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import LowdataError
from ..features import manage
from ..features.cache import cache_root_reason
from .common import add_cache_arg, report


def _cache_root(args) -> tuple[Path, str]:
    if args.cache is not None:
        return Path(args.cache), "--cache"
    return cache_root_reason()


def cmd_cache(args) -> int:
    root, reason = _cache_root(args)
    action = args.cache_command or "list"
    if action == "list":
        report(manage.format_usage(root, reason))
        return 0
    report(f"cache: {manage.printable(root)} ({reason})")
    if not root.is_dir():
        report("it does not exist: nothing to remove")
        return 0
    if action == "prune":
        results = Path(args.results)
        keep = manage.needed(results)
        if keep.unreadable:
            raise LowdataError(f"cannot read the results table {keep.unreadable[0]}: nothing removed (prune keeps what "
                               "the tables need, so it needs them all)")
        if not keep.tables:
            raise LowdataError(f"no results table under {manage.printable(results)} says what is needed: nothing "
                               "removed (give --results, or remove everything with `lowdata cache clear`)")
        report(f"{len(keep.pairs)} (backbone, category) pairs are used by the {keep.tables} results tables under "
              f"{manage.printable(results)}")

        def make_plan():
            return manage.plan_prune(root, keep)
    else:
        def make_plan():
            return manage.plan_clear(root, args.backbone, args.category)

    def say(plan):
        report("nothing to remove" if plan.empty() else
              f"{'would free' if args.dry_run else 'frees'} {plan.describe()}")

    if args.dry_run:
        say(make_plan())
        return 0
    plan = manage.carry_out(root, make_plan, say)
    if not plan.empty():
        report("done")
    return 0


def add_cache(sub) -> None:
    """The ``cache`` command's options."""
    ca = sub.add_parser("cache", help="what the embedding cache holds and where; prune or clear it (removes cache "
                                      "entries only, after saying how much it frees)")
    add_cache_arg(ca, "embedding cache folder (default $LOWDATA_CACHE; data/cache in a checkout; else the "
                      "platform's user cache folder)")
    csub = ca.add_subparsers(dest="cache_command")
    li = csub.add_parser("list", help="per backbone, input size and category: images, GB, last used (the default)")
    pr = csub.add_parser("prune", help="remove what no results table needs (after saying how much it frees)")
    pr.add_argument("--results", type=Path, default=Path("data/results"),
                    help="the results tables that say what is needed (default data/results)")
    pr.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    cl = csub.add_parser("clear", help="remove all of the cache, or a backbone's or a category's features")
    cl.add_argument("--backbone", help="only this backbone's (e.g. efficientnet-lite0, or a whole key)")
    cl.add_argument("--category", help="only this category's (e.g. mono, or elpv/mono)")
    cl.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    for s in (li, pr, cl):  # --cache after the verb too (lowdata cache prune --cache DIR)
        add_cache_arg(s, "as before the verb", default=argparse.SUPPRESS)
    ca.set_defaults(func=cmd_cache, cache_command=None, dry_run=False)
