"""The ``lowdata`` command.

``lowdata encode``          encode the default data (ELPV mono and poly, offline) into the cache and
                            print what was encoded and how fast; ``--data ROOT`` adds the categories
                            of an MVTec-layout folder.
``lowdata download mvtec``  fetch, verify and extract MVTec AD (needs internet).
``lowdata categories``      list the categories of an MVTec-layout folder.
``lowdata study``           the sample-size study of one category (paper section 4.3): every method
                            fitted on seeded subsets of N training images, with and without
                            augmentation; a resumable results table and a one-screen summary.
``lowdata augment-preview`` a grid of augmented copies, to check a policy by eye.
``lowdata fit``             fit an inspection model on a folder of good images and save it (a folder:
                            model.json + arrays), with a threshold set from the good images alone.
``lowdata score``           score images with a saved model: score, verdict, and PaDiM heatmaps.
``lowdata policy search``   choose an augmentation policy from good images alone (no defect): a policy
                            JSON that ``--policy`` and ``fit --aug`` read, and every candidate's fitness.
``lowdata cache``           what the embedding cache holds (per backbone, input size and category: images,
                            GB, last used) and where it is; ``prune`` frees what no results table needs,
                            ``clear`` all of it or a backbone's or a category's.

Errors print one line, ``lowdata: error: ...``, and exit with status 2 (``LOWDATA_DEBUG=1`` shows the
traceback). What each command writes, and what it refuses to replace: the README's "What lowdata reads
and writes".
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .book.params import AUTOAUG, BEYOND, CATEGORY, POLLUTION, PRESETS, WORKFLOW
from .book.figures import preview_grid
from .book.runner import build_book
from .cluster import connect
from .core.atomic import atomic_path, check_new_file
from .core.errors import LowdataError, one_line, printable, printable_block
from .console import Parser, error_line, format_warning, show_warning
from .core.quiet import debug as quiet_debug
from .autoaug.search import SearchConfig, check_search_images, search_policy, write_search
from .autoaug.space import load_space
from .data.augment import describe, policy_for
from .data.download import MVTEC_SHA256, MVTEC_URL, download_mvtec
from .data.images import IMAGE_EXTENSIONS, read_image, resize_rgb
from .data.mvtec import MVTEC_CATEGORIES, list_categories
from .data.sources import SOURCES, available_categories, load_category
from .detectors.params import describe_params, parse_assignments
from .detectors.registry import check_method, method_names, method_params, method_spec, paper_methods
from .experiments.polluted import parse_rate
from .experiments.pollution import PollutionConfig, recovery, run_pollution_study
from .experiments.refine import RULES as SROC_RULES, sroc_config, refine_folder
from .experiments.design import StudyConfig, check_subsets, draw_subset, parse_factors, parse_sizes
from .experiments.study import run_study
from .book.study_report import format_summary
from .experiments.table import check_results_path, results_path
from .features.backbones import DEFAULT_BACKBONE, backbone_names, default_input_size, load_backbone
from .features.efficientnet_b4 import use_b4_weights
from .features import manage
from .features.cache import cache_root_reason, default_cache_root
from .features.encode import cache_for, encode
from .inspection import model as inspection
from .inspection.inputs import collect_images, distinct_images
from .inspection.overlays import plan_overlays
from .inspection.store import MODEL_FILE, check_model_folder, check_scores_output
from .inspection.threshold import RULES as THRESHOLD_RULES


def _use_weights(args, backbone: str | None) -> None:
    """``--weights PATH`` (:func:`lowdata.features.efficientnet_b4.use_b4_weights`)."""
    if getattr(args, "weights", None) is not None:
        use_b4_weights(args.weights, backbone)


def _wanted(args) -> list[str] | None:
    return [c.strip() for c in args.categories.split(",") if c.strip()] if args.categories else None


def cmd_encode(args) -> int:


    targets = available_categories(args.data, elpv=not args.no_elpv, categories=_wanted(args))
    datasets = [load_category(src, cat, root=args.data) for src, cat in targets]
    backbone = load_backbone(args.backbone, args.input_size, weights="imagenet")
    cache = cache_for(backbone, args.cache)
    print(f"backbone {backbone.name} at {backbone.input_size}px, weights {backbone.weights_digest[:16]}; "
          f"levels {', '.join(f'{n} {h}x{w}x{c}' for n, (h, w, c) in zip(backbone.levels, backbone.level_shapes))}")
    print(f"cache {cache.dir}")
    rows = []
    for data in datasets:
        for split, samples in (("train", data.train), ("test", data.test)):
            emb = encode(backbone, [s.path for s in samples], cache, batch_size=args.batch_size,
                         progress=not args.no_progress, desc=f"{data.source}/{data.category} {split}")
            st = emb.stats
            rows.append((f"{data.source}/{data.category}", split, st.images, st.cached, st.encoded,
                         st.seconds, st.images_per_second))
    header = ("category", "split", "images", "cached", "encoded", "seconds", "img/s")
    print()
    print(f"{header[0]:<22}{header[1]:<7}" + "".join(f"{h:>9}" for h in header[2:]))
    for cat, split, n, cached, enc, sec, ips in rows:
        rate = f"{ips:9.1f}" if enc else f"{'-':>9}"
        print(f"{printable(cat):<22}{split:<7}{n:>9}{cached:>9}{enc:>9}{sec:>9.1f}{rate}")
    total_enc = sum(r[4] for r in rows)
    total_sec = sum(r[5] for r in rows)
    print(f"{'total':<29}{sum(r[2] for r in rows):>9}{sum(r[3] for r in rows):>9}{total_enc:>9}{total_sec:>9.1f}"
          + (f"{total_enc / total_sec:9.1f}" if total_enc else f"{'-':>9}"))
    return 0


def cmd_download(args) -> int:

    sha = None if (args.sha256 or "").lower() == "none" else (args.sha256 or MVTEC_SHA256)
    found = download_mvtec(args.to, url=args.url or MVTEC_URL, sha256=sha, keep_archive=not args.remove_archive,
                           progress=not args.no_progress)
    print(f"MVTec AD in {args.to}: {len(found)} categories ({', '.join(found)})")
    return 0


def cmd_categories(args) -> int:

    found = list_categories(args.data)
    if not found:
        raise LowdataError(f"no category in the MVTec AD layout (<category>/train/good) under {args.data}")
    for c in found:
        counts = load_category("mvtec", c, root=args.data).counts()
        print(f"{c:<14}" + "  ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def _param_options(parser) -> None:
    """``--param NAME=VALUE`` (repeated) for any detector's parameter, and the flags detectors declare as
    aliases (``--coreset F`` = ``--param coreset=F``); their help is built from the declarations."""
    lines = " | ".join(describe_params(m, method_spec(m).parameters, long=True) for m in method_names()
                       if any(not p.fixed for p in method_spec(m).parameters))
    parser.add_argument("--param", action="append", metavar="NAME=VALUE",
                        help=f"a detector parameter, for the methods that have it (repeat for several). {lines}")
    for m in method_names():
        for p in method_spec(m).parameters:
            if p.flag and f"--{p.name}" not in parser._option_string_actions:
                parser.add_argument(f"--{p.name}", metavar="VALUE", help=f"{m}: {p.help} (= --param {p.name}=VALUE)")


def _given_params(args) -> dict[str, str]:
    """The detector parameters of the command line: ``--param`` items, then the alias flags."""
    given = parse_assignments(args.param)
    for m in method_names():
        for p in method_spec(m).parameters:
            if p.flag and getattr(args, p.name, None) is not None:
                given[p.name] = getattr(args, p.name)
    return given


def _category_data(args):
    source = args.source or ("mvtec" if args.data is not None else "elpv")
    # absolute paths: tasks may run in other processes or on other machines, from another folder
    return load_category(source, args.category, root=None if args.data is None else Path(args.data).resolve())


def cmd_study(args) -> int:
    if args.out:
        check_results_path(args.out)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    factors = parse_factors(args.aug)
    config = StudyConfig(methods=methods, sizes=[], reps=args.reps, factors=factors,
                         augment_only=parse_factors(args.augment_only), seed=args.seed, aug_seed=args.aug_seed,
                         pixel_size=args.pixel_size, subsets=args.subsets, params=_given_params(args))
    if args.memory_gb is not None:
        print("note: --memory-gb is no longer used: PaDiM's maps are memory-mapped from the feature packs "
              "(<cache>/maps), whatever their size", file=sys.stderr)
    config.validate()  # before the slow steps: an unknown method fails at once
    data = _category_data(args)
    config.sizes = parse_sizes(args.sizes, len(data.train))
    config.validate()
    policy_for(data.category, args.policy)  # a bad policy fails before the backbone is loaded
    with _runner(args) as runner:  # an unreachable scheduler fails before the backbone is loaded too
        return _study(args, data, config, factors, runner)


def _study(args, data, config, factors, runner) -> int:
    backbone = load_backbone(args.backbone, args.input_size, weights="imagenet")
    out = args.out or results_path("data/results", data.source, data.category, backbone.name)
    print(f"{data.source}/{data.category}: {len(data.train)} training, {len(data.test)} test images; "
          f"{backbone.name} at {backbone.input_size}px; sizes {config.sizes}; {config.reps} replicates "
          f"(1 at the full size); "
          f"augmentation {factors or '-'}{'; augment-only ' + str(config.augment_only) if config.augment_only else ''}")
    df = run_study(data, backbone, cache_for(backbone, args.cache), config, out, policy=args.policy,
                   progress=not args.no_progress, runner=runner)
    print()
    print(printable_block(format_summary(df)))
    print(f"\nresults: {out} ({len(df)} rows of this run)")
    return 0


def cmd_augment_preview(args) -> int:
    kind = args.out.suffix.lstrip(".").lower()
    if kind not in ("png", "jpg", "jpeg", "pdf", "svg"):
        raise LowdataError(f"--out {args.out}: give a .png, .jpg, .pdf or .svg file for the preview")
    check_new_file(args.out, "--out", args.force)
    data = _category_data(args)
    policy = policy_for(data.category, args.policy)
    rng = np.random.default_rng(args.seed)
    picks = sorted(rng.choice(len(data.train), size=min(args.images, len(data.train)), replace=False))
    images = [resize_rgb(read_image(data.train[i].path), args.size) for i in picks]
    fig = preview_grid(images, policy, copies=args.copies, seed=args.seed,
                       titles=[data.train[i].path.name for i in picks])
    with atomic_path(args.out) as tmp:
        fig.savefig(tmp, dpi=80, format=kind)
    print(f"{policy.name}: {describe(policy)}\n{len(images)} images x {args.copies} copies -> {args.out}")
    return 0


def _sroc_config(args):
    return sroc_config(folds=args.folds, rule=args.rule, threshold=args.threshold, max_rounds=args.rounds,
                       scorer=args.scorer, seed=args.seed)


def cmd_refine(args) -> int:
    for option, target in (("--keep-list", args.keep_list), ("--csv", args.csv)):
        if target is not None and (target.suffix.lower() in IMAGE_EXTENSIONS or target.is_dir()):
            raise LowdataError(f"{option} {target} is {'a folder' if target.is_dir() else 'named like an image'}: "
                               "give a text file (nothing of yours is replaced)")
        if target is not None:
            check_new_file(target, option, args.force)
    if args.keep_list is not None and args.csv is not None and args.keep_list.resolve() == args.csv.resolve():
        raise LowdataError(f"--keep-list and --csv name the same file {args.csv}: give two files")
    df = refine_folder(args.folder, method=args.method, backbone=args.backbone, input_size=args.input_size,
                       config=_sroc_config(args), cache_dir=args.cache, progress=not args.no_progress)
    removed = df[df["verdict"] == "remove"]
    print(f"{len(df)} images; SROC ({_sroc_config(args).label()}, method {args.method}) would remove "
          f"{len(removed)}; nothing is deleted")
    with pd.option_context("display.max_rows", 500, "display.width", 200, "display.max_colwidth", 80):
        print(printable_block((df if args.all else removed).round(3).to_string(index=False)) if len(removed) or args.all
              else "")
    if args.keep_list:
        with atomic_path(args.keep_list) as tmp:
            Path(tmp).write_text("".join(f"{p}\n" for p in df.loc[df["verdict"] == "keep", "image"].sort_values()))
        print(f"kept images: {args.keep_list}")
    if args.csv:
        with atomic_path(args.csv) as tmp:
            df.to_csv(tmp, index=False)
        print(f"every image's score: {args.csv}")
    return 0


def cmd_pollution(args) -> int:
    if args.out:
        check_results_path(args.out)
    data = _category_data(args)
    rates = tuple(parse_rate(r) for r in args.rates.split(","))
    config = PollutionConfig(methods=tuple(m.strip() for m in args.methods.split(",")), rates=rates, reps=args.reps,
                             factors=tuple(parse_factors(args.aug)), sroc=_sroc_config(args), seed=args.seed,
                             ablation_rate=None if args.no_ablation else args.ablation_rate)
    bb = load_backbone(args.backbone, args.input_size)
    out = args.out or results_path("data/results", data.source, data.category, args.backbone, "pollution")
    df = run_pollution_study(data, bb, cache_for(bb, args.cache), config, out, progress=not args.no_progress)
    rec = recovery(df)
    with pd.option_context("display.max_rows", 500, "display.width", 200):
        print(printable_block(rec.pivot_table(index=["method", "aug_factor", "rate"], columns="refinement",
                                              values="auroc").round(3)))
    print(f"results: {out}; moved files: {out}.moved.csv")
    return 0


def _search_config(args) -> SearchConfig:
    return SearchConfig(budget=args.budget, eta=args.eta, folds=args.search_folds, seed=args.seed).validate()


def cmd_fit(args) -> int:
    check_model_folder(args.out)  # before any encoding: a folder that is not a lowdata model is refused at once
    auto = args.aug == "auto"
    if not auto and (args.budget is not None or args.space is not None):
        raise LowdataError("--budget and --space set the policy search: give them with --aug auto")
    search = SearchConfig(budget=32 if args.budget is None else args.budget, seed=args.seed).validate() \
        if auto else None
    space = load_space(args.space) if auto and args.space is not None else None
    model = inspection.fit_model(args.folder, args.method, backbone=args.backbone, input_size=args.input_size,
                      aug=None if args.aug == "none" else args.aug, copies=args.copies, fpr=args.fpr,
                      rule=args.threshold_rule, folds=args.folds, seed=args.seed, cache_dir=args.cache,
                      progress=not args.no_progress, params=_given_params(args), search=search, search_space=space)
    found = model.meta.get("policy_search")
    if found:
        print(f"policy search: {found['candidates']} candidates in {found['seconds']:.1f} s; chosen "
              f"{found['top'][0]['policy']}: {found['top'][0]['transforms']} (fitness {found['fitness']:.4f})")
    t = model.meta["timings"]
    replaced = (Path(args.out) / MODEL_FILE).is_file()
    path = model.save(args.out)
    size = sum(f.stat().st_size for f in Path(args.out).iterdir() if f.is_file())
    print(f"fitted {model.describe()}")
    search = f"policy search {t['policy_search_s']:.1f} s, " if t.get("policy_search_s") else ""
    print(f"time: {t['total_s']:.2f} s in all: backbone {t['backbone_load_s']:.2f} s, {search}encoding {t['encode_s']:.2f} s "
          f"({t['encoded']} images not in the cache), detector fit {t['detector_fit_s']:.3f} s, "
          f"threshold {t['threshold_s']:.3f} s")
    if model.meta["threshold"]["note"]:
        print(f"note: {model.meta['threshold']['note']}")
    print(f"model {'replaced' if replaced else 'written'}: {path.parent} ({size / 1e6:.1f} MB)")
    print(f"score new images: lowdata score {path.parent} IMAGES_OR_FOLDER")
    return 0


def cmd_policy_search(args) -> int:
    out = Path(args.out)
    if out.suffix.lower() != ".json":
        raise LowdataError(f"--out {out}: the policy is written as a .json file")
    table = out.with_name(out.stem + ".search.csv")
    for target in (out, table):
        check_new_file(target, "--out" if target == out else "--out (its table)", args.force)
    config = _search_config(args)
    space = load_space(args.space) if args.space is not None else None
    check_method(args.method)
    params = method_params([args.method], _given_params(args))[args.method]
    if (args.folder is None) == (args.category is None):
        raise LowdataError("give a folder of good images, or --category (with --data for an MVTec-layout root) "
                           "and --n, not both")
    if args.folder is not None:
        if args.n is not None or args.data is not None:
            raise LowdataError("--n and --data pick a category's training subset: give them with --category, not a folder")
        paths = collect_images(args.folder, "good images")
        where = str(args.folder)
    else:
        if args.n is None:
            raise LowdataError("--category needs --n: the number of good training images to search on")
        data = _category_data(args)
        if args.n < 1 or args.n > len(data.train):
            raise LowdataError(f"--n {args.n}: {data.category} has {len(data.train)} training images")
        idx = draw_subset(len(data.train), args.n, args.subset_seed, args.replicate)
        paths = [data.train[i].path for i in idx]
        where = (f"{data.source}/{data.category}: {args.n} of {len(data.train)} training images (subset seed "
                 f"{args.subset_seed}, replicate {args.replicate}, as the study draws them)")
    paths, hashes, _ = distinct_images(paths)
    check_search_images(len(paths), config.folds, args.method)  # before the backbone is loaded
    backbone = load_backbone(args.backbone, args.input_size, weights="imagenet")
    print(f"{where}; {args.method}; {backbone.name} at {backbone.input_size}px; budget {config.budget}, "
          f"rungs of {config.rungs()} copies, seed {config.seed}")
    result = search_policy(paths, args.method, backbone, cache_for(backbone, args.cache), config, space=space,
                           hashes=hashes, progress=not args.no_progress, params=params)
    print(printable_block(result.format()))
    policy_file, table_file = write_search(result, out)
    print(f"policy: {policy_file} (read by --policy and fit --aug); every candidate: {table_file}")
    return 0


def _finite_records(df: pd.DataFrame) -> list[dict]:
    """The rows as JSON objects, a number that is not finite (a ratio past the float range) as null: JSON
    has no Infinity."""
    return [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
            for row in df.to_dict(orient="records")]


def cmd_score(args) -> int:
    model = inspection.load_model(args.model, allow_other_version=args.allow_other_version)
    _use_weights(args, model.meta["backbone"]["name"])
    fmt = args.format or (Path(args.out).suffix.lstrip(".").lower() if args.out else "table")
    if fmt not in ("table", "csv", "json"):
        raise LowdataError(f"unknown output format {fmt!r}; choose csv or json (or give --format)")
    if args.heatmaps and not model.gives_maps:
        raise LowdataError(f"heatmaps need a model whose detector gives maps (padim, patchcore); {args.model} is {model.method}")
    paths = collect_images(args.images)
    # every place written is checked before the first image is scored: nothing is lost, no work is wasted
    if args.out:
        check_scores_output(args.out, paths)
        check_new_file(args.out, "--out", args.force)
    heatmaps = Path(args.heatmaps or "heatmaps") if model.gives_maps and not args.no_heatmaps else None
    if heatmaps is not None:
        plan_overlays(heatmaps, paths, write=False)
    df, maps = model.score(paths, cache_dir=args.cache, progress=not args.no_progress, return_maps=True)
    text = {"csv": lambda: df.to_csv(index=False),
            "json": lambda: json.dumps({"model": str(args.model), "method": model.method,
                                        "threshold": model.threshold, "images": _finite_records(df)},
                                       indent=1, allow_nan=False) + "\n"}
    n_bad = int((df["verdict"] == "anomalous").sum())
    summary = f"{n_bad} of {len(df)} images anomalous (score above {model.threshold:.4g}; {model.method})"
    if args.out:
        with atomic_path(args.out) as tmp:
            Path(tmp).write_text(text[fmt if fmt != "table" else "csv"]())
    if fmt == "table" or args.out:
        with pd.option_context("display.max_rows", 10000, "display.width", 200, "display.max_colwidth", 100):
            print(printable_block(df.round({"score": 3, "threshold": 3, "ratio": 3}).to_string(index=False)))
        print(summary)
        if args.out:
            print(f"written: {args.out}")
    else:
        sys.stdout.write(printable_block(text[fmt]()) if fmt == "csv" and sys.stdout.isatty() else text[fmt]())
        print(summary, file=sys.stderr)
    if heatmaps is not None:
        written = model.write_overlays(df, maps, heatmaps)
        print(f"{len(written)} heatmap overlays: {heatmaps}/",
              file=sys.stderr if fmt != "table" and not args.out else sys.stdout)
    return 0


def cmd_verify(args) -> int:
    import subprocess

    from .book.record import read_run
    from .book.reproduce import SETTINGS, TOLERANCE, check, comparable, read_expected, verdict, write_expected
    from .book.summary import load_results

    tolerance = TOLERANCE if args.tolerance is None else args.tolerance
    if args.write is not None:  # before any table is read
        check_new_file(args.write, "--write", args.force)
    if not tolerance > 0:
        raise LowdataError(f"--tolerance must be positive, got {args.tolerance}")
    if not args.results.is_dir() or not any(args.results.glob("study-*.parquet")):
        raise LowdataError(f"no study results in {args.results}: run `make run` (or `lowdata book`) first")
    run = read_run(args.run) if args.run.is_file() else {}
    params = run.get("params", {})
    results = load_results(args.results, params.get("backbone", "efficientnet-lite0"), params.get("input_size"),
                           run or None)
    if args.write is not None:
        if not run:
            raise LowdataError(f"no run record {args.run}: the expected figures must come from a `lowdata book` run")
        try:
            commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                    check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            commit = "unknown"
        meta = {"made by": "lowdata verify --write, from a real `make run` of the embedded default",
                "commit": commit, "started": run.get("started", ""), "command": run.get("command", ""),
                "minutes": f"{run.get('total_seconds', float('nan')) / 60:.1f}",
                **{k: str(params.get(k)) for k in SETTINGS}}
        fig = write_expected(results, args.write, meta, force=args.force)
        print(f"{args.write}: {len(fig)} expected figures of the run started {run.get('started', '?')}")
        return 0
    expected, meta = read_expected(args.expected)
    for why in comparable(run, meta):
        print(f"lowdata: warning: not the expected run's settings: {why}", file=sys.stderr)
    table = check(results, expected, tolerance)
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(printable_block(table.to_string(index=False, float_format=lambda v: f"{v:.4f}")))
    print(f"expected: the run of {meta.get('started', '?')} at commit {meta.get('commit', '?')} "
          f"({meta.get('minutes', '?')} min)")
    ok = len(table) > 0 and bool(table["within"].all())
    print(("verified: " if ok else "NOT verified: ") + verdict(table, tolerance))
    return 0 if ok else 1


def cmd_publish(args) -> int:
    from .book.publish import publish

    root = Path(args.root).resolve()
    folders = [os.environ[k] for k in ("MVTEC_ROOT", "LOWDATA_CACHE") if os.environ.get(k)]
    done = publish(root, args.out, folders)
    print(f"{done['book']}: {done['pages']} pages, {done['files']} files, {done['book_bytes'] / 1e6:.1f} MB "
          "(open lowdata-book/index.html from disk, or serve the folder)")
    print(f"{done['tables_zip']}: {done['n_tables']} tables as CSV ({done['tables_bytes'] / 1e6:.2f} MB); "
          f"also in {done['tables']}/ (index.csv names each one's page)")
    return 0


def _cache_root(args) -> tuple[Path, str]:
    if args.cache is not None:
        return Path(args.cache), "--cache"
    return cache_root_reason()


def cmd_cache(args) -> int:
    root, reason = _cache_root(args)
    action = args.cache_command or "list"
    if action == "list":
        print(printable_block(manage.format_usage(root, reason)))
        return 0
    print(f"cache: {manage.printable(root)} ({reason})")
    if not root.is_dir():
        print("it does not exist: nothing to remove")
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
        print(f"{len(keep.pairs)} (backbone, category) pairs are used by the {keep.tables} results tables under "
              f"{manage.printable(results)}")

        def make_plan():
            return manage.plan_prune(root, keep)
    else:
        def make_plan():
            return manage.plan_clear(root, args.backbone, args.category)

    def say(plan):
        print("nothing to remove" if plan.empty() else
              f"{'would free' if args.dry_run else 'frees'} {plan.describe()}", flush=True)

    if args.dry_run:
        say(make_plan())
        return 0
    plan = manage.carry_out(root, make_plan, say)
    if not plan.empty():
        print("done")
    return 0


#: the channels of stages 4, 6 and 7 (the disk check's estimate; an unknown backbone counts as the widest)
_STAGE_CHANNELS = {"efficientnet-lite0": (80, 192, 320), "efficientnet-lite1": (80, 192, 320),
                   "efficientnet-lite2": (88, 208, 352), "efficientnet-b4": (112, 272, 448)}


def _check_disk(targets, data, args, preset: dict) -> None:
    """Before ``lowdata book``: the disk the category studies' maps need, against the cache's free space."""
    root = Path(args.cache) if args.cache is not None else default_cache_root()
    size = int(args.input_size or default_input_size(args.backbone))
    # stage 4 at stride 16, stages 6 and 7 at 32 (without loading the model: TensorFlow stays out of this process)
    fine, coarse = -(-size // 16), -(-size // 32)
    c4, c6, c7 = _STAGE_CHANNELS.get(args.backbone, _STAGE_CHANNELS["efficientnet-b4"])
    row = (fine * fine * c4 + coarse * coarse * (c6 + c7)) * 4
    factor = max(int(f) for f in str(preset.get("aug", "0")).split(",") if f.strip().isdigit()) \
        if preset.get("aug") is not None else 0
    need = 0
    for source, category in targets:
        try:
            d = load_category(source, category, root=data)
        except LowdataError:
            continue
        images = len(d.train) * (1 + factor) + len(d.test)
        have = manage.labelled_images(root, args.backbone, f"{source}/{category}", size) if root.is_dir() else 0
        need += max(0, images - have) * row
    need = int(need * 1.15) + (256 << 20)  # other chapters' images (synthetic defects, other policies), results
    free = manage.free_bytes(root)
    print(f"disk: this run needs about {need / 1e9:.1f} GB in {root} ({free / 1e9:.1f} GB free there)", flush=True)
    if free < need:
        raise LowdataError(f"not enough disk for this run: it needs about {need / 1e9:.1f} GB in {root} and "
                           f"{free / 1e9:.1f} GB are free: free some (`lowdata cache prune`), or point --cache or "
                           "LOWDATA_CACHE to a larger disk")


def cmd_book(args) -> int:
    if args.verbose:  # the kernels inherit it
        os.environ["LOWDATA_VERBOSE"] = "1"
    root = Path(args.root)
    if not (root / "_config.yml").is_file() or not (root / "_toc.yml").is_file():
        raise LowdataError(f"no Jupyter Book (_config.yml and _toc.yml) in {root}")
    if not args.no_build and not (root / "book" / "_mathjax" / "mathjax" / "tex-chtml.js").is_file():
        raise LowdataError("MathJax is not in book/_mathjax: run `make book-assets` first (it fetches it from npm)")
    data = args.data if args.data is not None else os.environ.get("MVTEC_ROOT") or None
    wanted = _wanted(args)
    targets = available_categories(data, elpv=not args.no_elpv, categories=wanted)
    found = {c for s, c in targets if s == "mvtec"}
    absent = [c for c in MVTEC_CATEGORIES if c not in found and (wanted is None or c in wanted)]
    if data is None and absent:
        print(f"absent: the {len(absent)} MVTec AD categories (no MVTec root: set MVTEC_ROOT or give --data)")
    for c in absent if data is not None else []:
        print(f"absent: mvtec/{c} (not under {data})")
    if not targets:
        raise LowdataError("no category to run")
    preset = CATEGORY.preset(args.preset)
    given = {k: getattr(args, k) for k in preset}
    study = {k: preset[k] if v is None else v for k, v in given.items()}
    _check_disk(targets, data, args, study)
    params = {"backbone": args.backbone, "input_size": args.input_size, "methods": args.methods, **study,
              "out_dir": str(Path(args.out).resolve()),
              "cache_dir": None if args.cache is None else str(Path(args.cache).resolve()), "seed": args.seed}
    if args.subsets is not None:  # named only when given: the default's pages stay as they were
        params["subsets"] = check_subsets(args.subsets)
    print(f"{len(targets)} categories: {', '.join(f'{s}/{c}' for s, c in targets)}; preset {args.preset}: "
          + ", ".join(f"{k}={v}" for k, v in study.items()), flush=True)
    command = "lowdata " + " ".join(shlex.quote(a) for a in (args.argv or []))
    pollution = None if args.no_pollution else POLLUTION.preset(args.preset)
    workflow = None if args.no_workflow else WORKFLOW.preset(args.preset)
    beyond = None if args.no_beyond else BEYOND.preset(args.preset)
    autoaug = None if args.no_autoaug else AUTOAUG.preset(args.preset)
    with _runner(args) as runner:
        run = build_book(targets, data, root, params, absent=absent, command=command.strip(), build=not args.no_build,
                         progress=not args.no_progress, pollution=pollution, workflow=workflow, beyond=beyond,
                         autoaug=autoaug, runner=runner, rerun=args.rerun)
    failed = [f"{r['source']}/{r['category']}" for r in run["categories"] if r["status"] != "done"] + \
        [f"{part} {r['source']}/{r['category']}" for part in ("pollution", "workflow", "beyond", "autoaug")
         for r in run[part]
         if r["status"] != "done"] + \
        [r["notebook"] for r in run["summaries"] if r["status"] != "done"]
    print(f"done in {run['total_seconds'] / 60:.1f} min" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def _runner(args):
    """The Dask runner of ``--scheduler`` (checked workers; the dashboard's address printed)."""

    runner = connect(args.scheduler, cache_dir=args.cache, workers=args.workers)
    print(f"scheduler: {runner.describe()}", flush=True)
    return runner


def _add_scheduler_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scheduler", help="where tasks run: local (default: a Dask LocalCluster sized to this machine), "
                                       "tcp://HOST:PORT (an existing Dask cluster sharing the cache and data "
                                       "folders) or none (serial, in this process); default $LOWDATA_SCHEDULER "
                                       "or local")
    p.add_argument("--workers", type=int, help="local: worker processes (default: one per two cores)")


def _add_weights_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", type=Path, help="efficientnet-b4 only: a local copy of Keras' efficientnetb4_notop.h5 "
                                                "(checked by md5; default $LOWDATA_B4_WEIGHTS or Keras' download)")


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, help="root of an MVTec-layout folder (default: the embedded ELPV data)")
    p.add_argument("--source", choices=list(SOURCES), help="default: mvtec with --data, else elpv")
    p.add_argument("--category", required=True, help="e.g. bottle (MVTec) or mono / poly (ELPV)")
    p.add_argument("--policy", help="augmentation policy: a Table 4 category, 'default', or a JSON file "
                                    "(default: the category's Table 4 policy, else 'default')")


def build_parser() -> argparse.ArgumentParser:
    backbones, methods = backbone_names(), method_names()
    paper = ",".join(paper_methods())
    p = Parser(prog="lowdata", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("encode", help="encode data into the embedding cache and report speed")
    e.add_argument("--data", type=Path, help="root of an MVTec-layout folder whose categories are added")
    e.add_argument("--categories", help="comma-separated categories to encode (default: all)")
    e.add_argument("--no-elpv", action="store_true", help="leave out the ELPV categories")
    e.add_argument("--backbone", default=DEFAULT_BACKBONE, choices=backbones)
    e.add_argument("--input-size", type=int, help="input size in pixels (default 380)")
    _add_weights_arg(e)
    e.add_argument("--cache", type=Path, help="cache folder (default $LOWDATA_CACHE or data/cache)")
    e.add_argument("--batch-size", type=int, default=16)
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(func=cmd_encode)

    d = sub.add_parser("download", help="download a data set (needs internet)")
    d.add_argument("dataset", choices=["mvtec"])
    d.add_argument("--to", type=Path, required=True, help="folder to put the data set in")
    d.add_argument("--url", help="archive URL (default: the official MVTec AD archive); file:// works")
    d.add_argument("--sha256", help="expected SHA-256 of the archive, or 'none' to skip the check")
    d.add_argument("--remove-archive", action="store_true", help="delete the archive after extraction")
    d.add_argument("--no-progress", action="store_true")
    d.set_defaults(func=cmd_download)

    c = sub.add_parser("categories", help="list the categories of an MVTec-layout folder")
    c.add_argument("--data", type=Path, required=True)
    c.set_defaults(func=cmd_categories)

    st = sub.add_parser("study", help="the sample-size study of one category (resumable)")
    _add_data_args(st)
    st.add_argument("--backbone", default=DEFAULT_BACKBONE, choices=backbones)
    st.add_argument("--input-size", type=int, help="input size in pixels (default 380)")
    _add_weights_arg(st)
    st.add_argument("--methods", default=paper, help=f"comma-separated, of {', '.join(methods)} (default: {paper})")
    st.add_argument("--sizes", default="auto", help="'auto' (5..50 by 5, then by 10, and the maximum) or e.g. 5,10,max")
    st.add_argument("--reps", type=int, default=5, help="replicates per sample size (default 5)")
    st.add_argument("--aug", default="0", help="augmentation factors, e.g. 0,10 (copies per training image)")
    st.add_argument("--augment-only", default="", help="factors run without the original images, e.g. 1 (Figure 6)")
    st.add_argument("--seed", type=int, default=0, help="seed of the training subsets (default 0)")
    st.add_argument("--aug-seed", type=int, default=0, help="seed of the augmented copies (default 0)")
    st.add_argument("--pixel-size", type=int, default=224, help="resolution of PaDiM's pixel AUROC (default 224)")
    st.add_argument("--subsets", default="independent",
                    help="independent (a fresh subset for every size, the default) or nested (one seeded "
                         "permutation per replicate, its first N images: smaller subsets inside larger ones)")
    _param_options(st)
    st.add_argument("--memory-gb", type=float, default=None,
                    help="no longer used: PaDiM's maps are memory-mapped from the feature packs, whatever their size")
    st.add_argument("--cache", type=Path, help="cache folder (default $LOWDATA_CACHE or data/cache)")
    st.add_argument("--out", type=Path, help="results table, .parquet or .csv "
                                             "(default data/results/study-<source>-<category>-<backbone>.parquet)")
    st.add_argument("--no-progress", action="store_true")
    _add_scheduler_args(st)
    st.set_defaults(func=cmd_study)

    vf = sub.add_parser("verify", help="compare a run's figures (Tables 1, 5, 7 on ELPV) with the embedded default's "
                                       "expected ones; exit 1 if one is off")
    vf.add_argument("--results", type=Path, default=Path("data/results"), help="the study tables (default: data/results)")
    vf.add_argument("--run", type=Path, default=Path("book/results/run.json"), help="the book run's record")
    vf.add_argument("--expected", type=Path, help="default: the figures shipped with lowdata")
    vf.add_argument("--tolerance", type=float, default=None, help="default 0.005")
    vf.add_argument("--write", type=Path, help="write this run's figures as the expected ones to this file instead")
    vf.add_argument("--force", action="store_true", help="with --write: replace an existing file")
    vf.set_defaults(func=cmd_verify)

    pb = sub.add_parser("publish", help="the built book as a self-contained zip, and every table as CSV "
                                         "(_build/publish/)")
    pb.add_argument("--root", default=".", help="the book's root (default: here)")
    pb.add_argument("--out", type=Path, help="default: <root>/_build/publish")
    pb.set_defaults(func=cmd_publish)

    b = sub.add_parser("book", help="run the category notebooks with papermill and build the book")
    b.add_argument("--data", type=Path, help="MVTec-layout root whose categories are added (default $MVTEC_ROOT)")
    b.add_argument("--no-elpv", action="store_true", help="leave out the ELPV categories")
    b.add_argument("--categories", help="comma-separated categories to run (default: all available)")
    b.add_argument("--backbone", default=DEFAULT_BACKBONE, choices=backbones)
    b.add_argument("--input-size", type=int)
    _add_weights_arg(b)
    b.add_argument("--methods", default=CATEGORY.default("methods"), help=f"of {', '.join(methods)}")
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
    b.add_argument("--cache", type=Path)
    b.add_argument("--root", default=".", help="the book's root, with _config.yml and _toc.yml (default .)")
    b.add_argument("--no-build", action="store_true", help="run the notebooks only")
    b.add_argument("--no-pollution", action="store_true", help="leave out the polluted-training-set chapter")
    b.add_argument("--no-workflow", action="store_true", help="leave out the practitioner workflow chapter")
    b.add_argument("--no-beyond", action="store_true", help="leave out the part beyond the paper (PatchCore, 1 to 8 "
                                                            "shots, localization)")
    b.add_argument("--no-autoaug", action="store_true", help="leave out the chapter on choosing the augmentation "
                                                             "automatically")
    b.add_argument("--rerun", action="store_true",
                   help="execute every notebook again (default: keep the pages the last run made with the same "
                        "template, parameters and code)")
    _add_scheduler_args(b)
    b.add_argument("--no-progress", action="store_true")
    b.add_argument("--verbose", action="store_true",
                   help="also show what TensorFlow and the notebooks' kernels print (LOWDATA_VERBOSE=1)")
    b.set_defaults(func=cmd_book)

    a = sub.add_parser("augment-preview", help="save a grid of augmented training images")
    _add_data_args(a)
    a.add_argument("--images", type=int, default=4, help="training images to show (default 4)")
    a.add_argument("--copies", type=int, default=5, help="augmented copies per image (default 5)")
    a.add_argument("--size", type=int, default=380, help="size the images are resized to first (default 380)")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--out", type=Path, required=True, help="image file to write, e.g. preview.png")
    a.add_argument("--force", action="store_true", help="replace --out if it exists")
    a.set_defaults(func=cmd_augment_preview)
    def sroc_args(q):
        q.add_argument("--folds", type=int, default=5, help="out-of-fold scoring folds (default 5)")
        q.add_argument("--rule", default="zscore", choices=list(SROC_RULES),
                       help="removal rule (default zscore)")
        q.add_argument("--threshold", type=float,
                       help="zscore: robust z cut (default 3); quantile: q (default 0.9); chi2: alpha (default 0.001)")
        q.add_argument("--rounds", type=int, default=5, help="most refinement rounds (default 5)")
        q.add_argument("--scorer", help="detector that judges the training images (default: the method)")
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--cache", type=Path)
        q.add_argument("--backbone", default=DEFAULT_BACKBONE, choices=backbones)
        q.add_argument("--input-size", type=int)
        _add_weights_arg(q)
        q.add_argument("--no-progress", action="store_true")

    r = sub.add_parser("refine", help="list the images SROC would remove from a folder of training images")
    r.add_argument("folder", type=Path)
    r.add_argument("--method", default="maha-lw", help=f"{', '.join(methods)} (default maha-lw)")
    r.add_argument("--keep-list", type=Path, help="write the kept images' paths to this file (nothing is deleted)")
    r.add_argument("--csv", type=Path, help="write every image's score and verdict to this CSV")
    r.add_argument("--force", action="store_true", help="replace --keep-list and --csv if they exist")
    r.add_argument("--all", action="store_true", help="print every image, not only the removed ones")
    sroc_args(r)
    r.set_defaults(func=cmd_refine)

    f = sub.add_parser("fit", help="fit an inspection model on a folder of good images (5 or more) and save it")
    f.add_argument("folder", type=Path, help="folder of good images (no defects)")
    f.add_argument("--out", type=Path, required=True, help="model folder to write (model.json + detector-*.npz)")
    f.add_argument("--method", default="maha-lw", choices=methods,
                   help="detector (default maha-lw; padim and patchcore give heatmaps)")
    f.add_argument("--backbone", default=DEFAULT_BACKBONE, choices=backbones)
    f.add_argument("--input-size", type=int, help="input size in pixels (default 380)")
    _add_weights_arg(f)
    f.add_argument("--aug", default="none", help="augmentation policy: none (default), default, a Table 4 "
                                                 "category (e.g. bottle), a .json policy file, or auto (chosen "
                                                 "from the good images by a policy search)")
    f.add_argument("--budget", type=int, help="--aug auto: candidate policies of the search (default 32)")
    f.add_argument("--space", type=Path, help="--aug auto: a search space file (JSON; default: Table 4's families)")
    f.add_argument("--copies", type=int, default=10, help="augmented copies per image with --aug (default 10)")
    f.add_argument("--fpr", type=float, help="target false-positive rate of the threshold (default 0.05)")
    f.add_argument("--threshold-rule", choices=list(THRESHOLD_RULES),
                   help="how the threshold is set from the good images (default lognormal; see the book)")
    f.add_argument("--folds", type=int, help="out-of-fold scoring folds (default: leave-one-out up to 10 images)")
    _param_options(f)
    f.add_argument("--seed", type=int, default=0, help="seed of the folds and the augmented copies (default 0)")
    f.add_argument("--cache", type=Path, help="embedding cache folder (default $LOWDATA_CACHE or data/cache)")
    f.add_argument("--no-progress", action="store_true")
    f.set_defaults(func=cmd_fit)

    pol = sub.add_parser("policy", help="augmentation policies: policy search chooses one from good images alone")
    psub = pol.add_subparsers(dest="policy_command", required=True)
    ps = psub.add_parser("search", help="choose an augmentation policy for N good images and a detector, without "
                                        "any defect (held-out good images against synthetic defects)")
    ps.add_argument("folder", type=Path, nargs="?", help="folder of good images (or --category with --n)")
    ps.add_argument("--data", type=Path, help="root of an MVTec-layout folder (default: the embedded ELPV data)")
    ps.add_argument("--source", choices=list(SOURCES), help="default: mvtec with --data, else elpv")
    ps.add_argument("--category", help="search on N training images of this category (e.g. bottle, mono)")
    ps.add_argument("--n", type=int, help="with --category: how many training images")
    ps.add_argument("--replicate", type=int, default=0, help="with --category: which seeded subset (default 0)")
    ps.add_argument("--subset-seed", type=int, default=0, help="with --category: the study's subset seed (default 0)")
    ps.add_argument("--method", default="maha-lw", help=f"the detector the policy is for, of {', '.join(methods)} "
                                                         "(default maha-lw)")
    ps.add_argument("--out", type=Path, required=True, help="policy file to write (.json); the candidates' fitness "
                                                            "goes beside it (<stem>.search.csv)")
    ps.add_argument("--force", action="store_true", help="replace --out if it exists")
    _param_options(ps)
    ps.add_argument("--budget", type=int, default=32, help="candidate policies (default 32)")
    ps.add_argument("--eta", type=int, default=2, help="successive halving: keep 1/eta per rung (default 2)")
    ps.add_argument("--search-folds", type=int, default=5, help="folds over the good images (default 5)")
    ps.add_argument("--space", type=Path, help="search space file (JSON; default: Table 4's transform families)")
    ps.add_argument("--seed", type=int, default=0, help="seed of the candidates, folds, copies and defects (default 0)")
    ps.add_argument("--backbone", default=DEFAULT_BACKBONE, choices=backbones)
    ps.add_argument("--input-size", type=int, help="input size in pixels (default 380)")
    _add_weights_arg(ps)
    ps.add_argument("--cache", type=Path, help="embedding cache folder (default $LOWDATA_CACHE or data/cache)")
    ps.add_argument("--no-progress", action="store_true")
    ps.set_defaults(func=cmd_policy_search)

    ca = sub.add_parser("cache", help="what the embedding cache holds and where; prune or clear it")
    ca.add_argument("--cache", type=Path, help="cache folder (default $LOWDATA_CACHE; data/cache in a checkout; else "
                                               "the platform's user cache folder)")
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
        s.add_argument("--cache", type=Path, default=argparse.SUPPRESS, help="as before the verb")
    ca.set_defaults(func=cmd_cache, cache_command=None, dry_run=False)

    sc = sub.add_parser("score", help="score images with a saved model: score and verdict per image")
    sc.add_argument("model", type=Path, help="model folder written by lowdata fit")
    sc.add_argument("images", nargs="+", type=Path, help="image files and/or folders of images")
    sc.add_argument("--format", choices=["table", "csv", "json"],
                    help="output format (default: a table; with --out, from the file's suffix)")
    sc.add_argument("--out", type=Path, help="write the scores to this .csv or .json file")
    sc.add_argument("--force", action="store_true", help="replace --out if it exists")
    sc.add_argument("--heatmaps", type=Path, help="padim and patchcore models: folder for the heatmap overlays (default heatmaps)")
    sc.add_argument("--no-heatmaps", action="store_true", help="padim and patchcore models: do not write heatmap overlays")
    sc.add_argument("--allow-other-version", action="store_true",
                    help="use a model written by another lowdata version (scores may differ)")
    sc.add_argument("--cache", type=Path, help="keep the scored images' embeddings in this cache folder (default: "
                                               "a temporary folder, removed after scoring)")
    _add_weights_arg(sc)
    sc.add_argument("--no-progress", action="store_true")
    sc.set_defaults(func=cmd_score)

    po = sub.add_parser("pollution", help="polluted training sets: robustness and refinement study of a category")
    _add_data_args(po)
    po.add_argument("--methods", default=",".join(PollutionConfig.methods), help=f"of {', '.join(methods)}")
    po.add_argument("--rates", default=",".join(f"{r:g}" for r in PollutionConfig.rates),
                    help="pollution rates in [0, 1) (or 10%%)")
    po.add_argument("--reps", type=int, default=PollutionConfig.reps)
    po.add_argument("--aug", default=",".join(map(str, PollutionConfig.factors)),
                    help="augmentation factors (detectors that consume maps, PaDiM: 0 only)")
    po.add_argument("--ablation-rate", type=float, default=0.1, help="rate of the SROC ablation (default 0.1)")
    po.add_argument("--no-ablation", action="store_true")
    po.add_argument("--out", type=Path)
    sroc_args(po)
    po.set_defaults(func=cmd_pollution)
    return p


def main(argv: list[str] | None = None) -> int:
    Parser.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or an argument error, already said in one line (2)
        return exc.code if isinstance(exc.code, int) else 2
    args.argv = list(sys.argv[1:] if argv is None else argv)
    warnings.formatwarning = format_warning
    debug = quiet_debug()
    try:
        if hasattr(args, "backbone"):  # before any work; score knows its backbone from the model (cmd_score)
            _use_weights(args, args.backbone)
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


if __name__ == "__main__":
    run()
