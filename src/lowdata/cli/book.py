"""``lowdata book``, ``verify`` and ``publish``: the book, its check and its release."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from ..book.disk import check_disk
from ..book.record import read_run
from ..book.backbones import parse_backbones
from ..book.params import AUTOAUG, BACKBONES, BEYOND, CATEGORY, POLLUTION, PRESETS, WORKFLOW
from ..book.reproduce import TOLERANCE, record_expected, verdict, verify_run
from ..book.runner import CHAPTERS, build_book
from ..core.errors import LowdataError
from ..data.mvtec import MVTEC_CATEGORIES
from ..data.roots import env_roots, given_roots, parse_data, run_targets, unique_roots
from ..detectors.registry import method_names, uses_maps
from ..experiments.design import check_subsets, parse_test_aug
from .common import (add_backbone_args, add_cache_arg, add_force_arg, add_progress_arg, add_scheduler_args, report,
                     scheduler, wanted)


def cmd_verify(args) -> int:
    if args.write is not None:
        fig, run = record_expected(args.results, args.run, args.write, force=args.force)
        report(f"{args.write}: {len(fig)} expected figures of the run started {run.get('started', '?')}")
        return 0
    table, meta, why = verify_run(args.results, args.run, args.expected, args.tolerance)
    for reason in why:
        report(f"lowdata: warning: not the expected run's settings: {reason}", err=True)
    ok = len(table) > 0 and bool(table["within"].all())
    report(table, f"expected: the run of {meta.get('started', '?')} at commit {meta.get('commit', '?')} "
           f"({meta.get('minutes', '?')} min)", ("verified: " if ok else "NOT verified: ") + verdict(table, args.tolerance),
           float_format=lambda v: f"{v:.4f}")
    return 0 if ok else 1


def cmd_publish(args) -> int:
    from ..book.publish import publish  # zip and friends, only for this command

    root = Path(args.root).resolve()
    record = root / "book" / "results" / "run.json"  # the data roots the book was made from, and the environment's
    given = read_run(record).get("data_roots") or [] if record.is_file() else []
    folders = list(dict.fromkeys([*(str(r.path) for r in env_roots()), *(str(parse_data(d).path) for d in given),
                                  *([os.environ["LOWDATA_CACHE"]] if os.environ.get("LOWDATA_CACHE") else [])]))
    done = publish(root, args.out, folders)
    report(f"{done['book']}: {done['pages']} pages, {done['files']} files, {done['book_bytes'] / 1e6:.1f} MB "
          "(open lowdata-book/index.html from disk, or serve the folder)")
    report(f"{done['tables_zip']}: {done['n_tables']} tables as CSV ({done['tables_bytes'] / 1e6:.2f} MB); "
          f"also in {done['tables']}/ (index.csv names each one's page)")
    return 0


def cmd_book(args) -> int:
    if args.verbose:  # the kernels inherit it
        os.environ["LOWDATA_VERBOSE"] = "1"
    root = Path(args.root)
    if not (root / "_config.yml").is_file() or not (root / "_toc.yml").is_file():
        raise LowdataError(f"no Jupyter Book (_config.yml and _toc.yml) in {root}")
    if not args.no_build and not (root / "book" / "_mathjax" / "mathjax" / "tex-chtml.js").is_file():
        raise LowdataError("MathJax is not in book/_mathjax: run `make book-assets` first (it fetches it from npm)")
    roots = unique_roots(given_roots(args.data))
    asked = wanted(args)
    targets = run_targets(roots, elpv=not args.no_elpv, categories=asked)
    found = {t.category for t in targets if t.source == "mvtec"}
    absent = [c for c in MVTEC_CATEGORIES if c not in found and (asked is None or c in asked)]
    for r in roots:
        report(f"data: {r} ({r.origin}): " + ", ".join(f"{t.source}/{t.category}" for t in targets if t.root == r.path))
    if not found and absent:
        report(f"absent: the {len(absent)} MVTec AD categories (no MVTec AD root: set MVTEC_ROOT or give "
               "--data mvtec=ROOT)")
    if found and absent:
        report(f"absent: {', '.join(f'mvtec/{c}' for c in absent)} (not under "
               + ", ".join(str(r.path) for r in roots if r.source in (None, "mvtec")) + ")")
    if not targets:
        raise LowdataError("no category to run")
    preset = CATEGORY.preset(args.preset)
    given = {k: getattr(args, k) for k in preset}
    study = {k: preset[k] if v is None else v for k, v in given.items()}
    views = max(parse_test_aug(str(BEYOND.preset(args.preset).get("test_aug") or "") or None))  # the views' maps too
    backbones = None if args.no_backbones else BACKBONES.preset(args.preset)
    if backbones is not None and args.backbones is not None:
        backbones["backbones"] = ",".join(parse_backbones(args.backbones))
    chapter = {**BACKBONES.defaults(args.preset), **(backbones or {})}  # its other backbones' maps stay on disk
    maps = backbones is not None and uses_maps(m.strip() for m in chapter["methods"].split(",") if m.strip())
    others = tuple(b for b in parse_backbones(chapter["backbones"]) if b != args.backbone) if maps else ()
    check_disk(targets, args.backbone, args.input_size, args.cache, study.get("aug"), say=report,
               views=0 if args.no_beyond else views, others=others, others_aug=chapter["aug"])
    params = {"backbone": args.backbone, "input_size": args.input_size, "methods": args.methods, **study,
              "out_dir": str(Path(args.out).resolve()),
              "cache_dir": None if args.cache is None else str(Path(args.cache).resolve()), "seed": args.seed}
    if args.subsets is not None:  # named only when given: the default's pages stay as they were
        params["subsets"] = check_subsets(args.subsets)
    report(f"{len(targets)} categories: {', '.join(f'{t.source}/{t.category}' for t in targets)}; preset {args.preset}: "
          + ", ".join(f"{k}={v}" for k, v in study.items()))
    command = "lowdata " + " ".join(shlex.quote(a) for a in (args.argv or []))
    pollution = None if args.no_pollution else POLLUTION.preset(args.preset)
    workflow = None if args.no_workflow else WORKFLOW.preset(args.preset)
    beyond = None if args.no_beyond else BEYOND.preset(args.preset)
    autoaug = None if args.no_autoaug else AUTOAUG.preset(args.preset)
    with scheduler(args) as runner:
        run = build_book(targets, root, params, roots=roots, absent=absent,
                         command=command.strip(), build=not args.no_build, progress=not args.no_progress,
                         pollution=pollution, workflow=workflow, beyond=beyond, backbones=backbones, autoaug=autoaug,
                         runner=runner,
                         rerun=args.rerun)
    failed = [f"{r['source']}/{r['category']}" for r in run["categories"] if r["status"] != "done"] + \
        [f"{part} {r['source']}/{r['category']}" for part in CHAPTERS[1:] for r in run[part]
         if r["status"] != "done"] + \
        [r["notebook"] for r in run["summaries"] if r["status"] != "done"]
    report(f"done in {run['total_seconds'] / 60:.1f} min" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def add_verify(sub) -> None:
    """The ``verify`` command's options."""
    vf = sub.add_parser("verify", help="compare a run's figures (Tables 1, 5, 7 on ELPV) with the embedded default's "
                                       "expected ones; exit 1 if one is off (writes nothing, unless --write)")
    vf.add_argument("--results", type=Path, default=Path("data/results"), help="the study tables (default: data/results)")
    vf.add_argument("--run", type=Path, default=Path("book/results/run.json"), help="the book run's record")
    vf.add_argument("--expected", type=Path, help="default: the figures shipped with lowdata")
    vf.add_argument("--tolerance", type=float, default=TOLERANCE, help=f"default {TOLERANCE}")
    vf.add_argument("--write", type=Path, help="write this run's figures as the expected ones to this file instead")
    add_force_arg(vf, "--write")
    vf.set_defaults(func=cmd_verify)


def add_publish(sub) -> None:
    """The ``publish`` command's options."""
    pb = sub.add_parser("publish", help="the built book as a self-contained zip, and every table as CSV "
                                         "(_build/publish/)")
    pb.add_argument("--root", default=".", help="the book's root (default: here)")
    pb.add_argument("--out", type=Path, help="default: <root>/_build/publish")
    pb.set_defaults(func=cmd_publish)


def add_book(sub) -> None:
    """The ``book`` command's options."""
    b = sub.add_parser("book", help="run the category notebooks with papermill and build the book (results in "
                                    "--out, the executed pages in book/, the site in _build/html)")
    b.add_argument("--data", action="append", metavar="[SOURCE=]ROOT",
                   help="a folder of categories to add, each in the layout it is recognised in, or SOURCE=ROOT to read "
                        "it in one source's layout (visa=/data/VisA); repeat for several (default: $LOWDATA_<SOURCE>_ROOT "
                        "and $MVTEC_ROOT)")
    b.add_argument("--no-elpv", action="store_true", help="leave out the ELPV categories")
    b.add_argument("--categories", help="comma-separated categories to run (default: all available)")
    add_backbone_args(b)
    b.add_argument("--methods", default=CATEGORY.default("methods"), help=f"of {', '.join(method_names())}")
    b.add_argument("--preset", choices=list(PRESETS), default=PRESETS[0],
                   help="study settings: 'default' (8 sizes, 3 replicates: minutes on ELPV) or 'paper' (the "
                        "paper's grid, 5 replicates, factors up to 20); the options below override it")
    b.add_argument("--sizes", help="e.g. 5,10,max or auto (default: the preset's)")
    b.add_argument("--reps", type=int, help="replicates per size (default: the preset's)")
    b.add_argument("--aug", help="augmentation factors for every method (default: the preset's, 0,10)")
    b.add_argument("--sweep", help="more factors, KNN and Mahalanobis only, for Figure 5 ('' for none)")
    b.add_argument("--augment-only", help="factors without the original images, for Figure 6 ('' for none)")
    b.add_argument("--subsets", help="independent (default) or nested: how each replicate's subsets are drawn")
    b.add_argument("--seed", type=int, default=CATEGORY.default("seed"))
    b.add_argument("--out", default=CATEGORY.default("out_dir"), help=f"results folder (default {CATEGORY.default('out_dir')})")
    add_cache_arg(b)
    b.add_argument("--root", default=".", help="the book's root, with _config.yml and _toc.yml (default .)")
    b.add_argument("--no-build", action="store_true", help="run the notebooks only")
    b.add_argument("--no-pollution", action="store_true", help="leave out the polluted-training-set chapter")
    b.add_argument("--no-workflow", action="store_true", help="leave out the practitioner workflow chapter")
    b.add_argument("--no-beyond", action="store_true", help="leave out the part beyond the paper (PatchCore, 1 to 8 "
                                                            "shots, localization)")
    b.add_argument("--backbones", metavar="LIST", help="the backbones the chapter \"Which backbone?\" compares (default "
                   f"{BACKBONES.default('backbones')}; its grid: the preset's, the default reduced to keep `make run` short)")
    b.add_argument("--no-backbones", action="store_true", help="leave out the backbone comparison")
    b.add_argument("--no-autoaug", action="store_true", help="leave out the chapter on choosing the augmentation "
                                                             "automatically")
    b.add_argument("--rerun", action="store_true",
                   help="execute every notebook again (default: keep the pages the last run made with the same "
                        "template, parameters and code)")
    add_scheduler_args(b)
    add_progress_arg(b)
    b.add_argument("--verbose", action="store_true",
                   help="also show what TensorFlow and the notebooks' kernels print (LOWDATA_VERBOSE=1)")
    b.set_defaults(func=cmd_book)
