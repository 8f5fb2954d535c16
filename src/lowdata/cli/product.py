"""``lowdata fit``, ``score`` and ``policy search``: the practitioner's commands, beside the experiments."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..autoaug.search import SearchConfig, check_search_images, kept_note, search_policy, write_search
from ..autoaug.space import load_space
from ..core.atomic import atomic_path, check_new_file
from ..core.errors import LowdataError, printable_block
from ..detectors.registry import check_method, method_names, method_params
from ..experiments.design import draw_subset
from ..features.backbones import load_backbone
from ..features.encode import cache_for
from ..inspection import model as inspection
from ..inspection.inputs import collect_images, distinct_images
from ..inspection.overlays import plan_overlays
from ..inspection.store import MODEL_FILE, check_model_folder, check_scores_output
from ..inspection.threshold import RULES as THRESHOLD_RULES
from .common import (add_backbone_args, add_cache_arg, add_data_args, add_force_arg, add_param_args, add_progress_arg,
                     category_data, finite_records, given_params, map_methods, report, use_weights)


def cmd_fit(args) -> int:
    check_model_folder(args.out)  # before any encoding: a folder that is not a lowdata model is refused at once
    auto = args.aug == "auto"
    if not auto and (args.budget is not None or args.space is not None):
        raise LowdataError("--budget and --space set the policy search: give them with --aug auto")
    search = SearchConfig(budget=32 if args.budget is None else args.budget, seed=args.seed).validate() \
        if auto else None
    space = load_space(args.space) if auto and args.space is not None else None
    if args.test_aug is not None and args.test_aug < 1:
        raise LowdataError(f"--test-aug {args.test_aug}: give a number of views of at least 1 (leave it out for none)")
    model = inspection.fit_model(args.folder, args.method, backbone=args.backbone, input_size=args.input_size,
                      aug=None if args.aug == "none" else args.aug, copies=args.copies, fpr=args.fpr,
                      rule=args.threshold_rule, folds=args.folds, seed=args.seed, cache_dir=args.cache,
                      progress=not args.no_progress, params=given_params(args), search=search, search_space=space,
                      test_aug=args.test_aug or 0)
    found = model.meta.get("policy_search")
    if found:
        report(f"policy search: {found['candidates']} candidates in {found['seconds']:.1f} s; chosen "
               f"{found['chosen']} (fitness {found['fitness']:.4f}){kept_note(found['config'])}")
    t = model.meta["timings"]
    replaced = (Path(args.out) / MODEL_FILE).is_file()
    path = model.save(args.out)
    size = sum(f.stat().st_size for f in Path(args.out).iterdir() if f.is_file())
    report(f"fitted {model.describe()}")
    search = f"policy search {t['policy_search_s']:.1f} s, " if t.get("policy_search_s") else ""
    report(f"time: {t['total_s']:.2f} s in all: backbone {t['backbone_load_s']:.2f} s, {search}encoding {t['encode_s']:.2f} s "
          f"({t['encoded']} images not in the cache), detector fit {t['detector_fit_s']:.3f} s, "
          f"threshold {t['threshold_s']:.3f} s")
    if model.meta["threshold"]["note"]:
        report(f"note: {model.meta['threshold']['note']}")
    report(f"model {'replaced' if replaced else 'written'}: {path.parent} ({size / 1e6:.1f} MB)")
    report(f"score new images: lowdata score {path.parent} IMAGES_OR_FOLDER")
    return 0


def cmd_policy_search(args) -> int:
    out = Path(args.out)
    if out.suffix.lower() != ".json":
        raise LowdataError(f"--out {out}: the policy is written as a .json file")
    table = out.with_name(out.stem + ".search.csv")
    for target in (out, table):
        check_new_file(target, "--out" if target == out else "--out (its table)", args.force)
    config = SearchConfig(budget=args.budget, eta=args.eta, folds=args.search_folds, seed=args.seed).validate()
    space = load_space(args.space) if args.space is not None else None
    check_method(args.method)
    params = method_params([args.method], given_params(args))[args.method]
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
        data = category_data(args)
        if args.n < 1 or args.n > len(data.train):
            raise LowdataError(f"--n {args.n}: {data.category} has {len(data.train)} training images")
        idx = draw_subset(len(data.train), args.n, args.subset_seed, args.replicate)
        paths = [data.train[i].path for i in idx]
        where = (f"{data.source}/{data.category}: {args.n} of {len(data.train)} training images (subset seed "
                 f"{args.subset_seed}, replicate {args.replicate}, as the study draws them)")
    paths, hashes, _ = distinct_images(paths)
    check_search_images(len(paths), config.folds, args.method)  # before the backbone is loaded
    backbone = load_backbone(args.backbone, args.input_size, weights="imagenet")
    report(f"{where}; {args.method}; {backbone.name} at {backbone.input_size}px; budget {config.budget}, "
          f"rungs of {config.rungs()} copies, seed {config.seed}")
    result = search_policy(paths, args.method, backbone, cache_for(backbone, args.cache), config, space=space,
                           hashes=hashes, progress=not args.no_progress, params=params)
    report(result.format())
    policy_file, table_file = write_search(result, out)
    report(f"policy: {policy_file} (read by --policy and fit --aug); every candidate: {table_file}")
    return 0


def cmd_score(args) -> int:
    model = inspection.load_model(args.model, allow_other_version=args.allow_other_version)
    use_weights(args, model.meta["backbone"]["name"])
    fmt = args.format or (Path(args.out).suffix.lstrip(".").lower() if args.out else "table")
    if fmt not in ("table", "csv", "json"):
        raise LowdataError(f"unknown output format {fmt!r}; choose csv or json (or give --format)")
    if args.heatmaps and not model.gives_maps:
        raise LowdataError(f"heatmaps need a model whose detector gives maps ({', '.join(map_methods())}); "
                           f"{args.model} is {model.method}")
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
                                        "threshold": model.threshold, "images": finite_records(df)},
                                       indent=1, allow_nan=False) + "\n"}
    n_bad = int((df["verdict"] == "anomalous").sum())
    summary = f"{n_bad} of {len(df)} images anomalous (score above {model.threshold:.4g}; {model.method})"
    if args.out:
        with atomic_path(args.out) as tmp:
            Path(tmp).write_text(text[fmt if fmt != "table" else "csv"]())
    if fmt == "table" or args.out:
        report(df.round({"score": 3, "threshold": 3, "ratio": 3}), summary)
        if args.out:
            report(f"written: {args.out}")
    else:
        sys.stdout.write(printable_block(text[fmt]()) if fmt == "csv" and sys.stdout.isatty() else text[fmt]())
        report(summary, err=True)
    if heatmaps is not None:
        written = model.write_overlays(df, maps, heatmaps)
        report(f"{len(written)} heatmap overlays: {heatmaps}/", err=fmt != "table" and not args.out)
    return 0


def add_fit(sub) -> None:
    """The ``fit`` command's options."""
    f = sub.add_parser("fit", help="fit an inspection model on a folder of good images (5 or more) and save it "
                                   "(--out: a model folder, model.json + arrays; a folder that is not a model is "
                                   "refused)")
    f.add_argument("folder", type=Path, help="folder of good images (no defects)")
    f.add_argument("--out", type=Path, required=True, help="model folder to write (model.json + detector-*.npz)")
    f.add_argument("--method", default="maha-lw", choices=method_names(),
                   help=f"detector (default maha-lw; {' and '.join(map_methods())} give heatmaps)")
    add_backbone_args(f)
    f.add_argument("--aug", default="none", help="augmentation policy: none (default), default, a Table 4 "
                                                 "category (e.g. bottle), a .json policy file, or auto (chosen "
                                                 "from the good images by a policy search)")
    f.add_argument("--budget", type=int, help="--aug auto: candidate policies of the search (default 32)")
    f.add_argument("--space", type=Path, help="--aug auto: a search space file (JSON; default: Table 4's families)")
    f.add_argument("--copies", type=int, default=10, help="augmented copies per image with --aug (default 10)")
    f.add_argument("--test-aug", type=int, metavar="K", help="with --aug: score every image as the mean over it and K "
                   "views made with the same policy (at most --copies; default: the image alone)")
    f.add_argument("--fpr", type=float, help="target false-positive rate of the threshold (default 0.05)")
    f.add_argument("--threshold-rule", choices=list(THRESHOLD_RULES),
                   help="how the threshold is set from the good images (default lognormal; see the book)")
    f.add_argument("--folds", type=int, help="out-of-fold scoring folds (default: leave-one-out up to 10 images)")
    add_param_args(f)
    f.add_argument("--seed", type=int, default=0, help="seed of the folds and the augmented copies (default 0)")
    add_cache_arg(f)
    add_progress_arg(f)
    f.set_defaults(func=cmd_fit)


def add_policy(sub) -> None:
    """The ``policy`` command's options."""
    pol = sub.add_parser("policy", help="augmentation policies: policy search chooses one from good images alone (writes a policy .json and its candidates' table)")
    psub = pol.add_subparsers(dest="policy_command", required=True)
    ps = psub.add_parser("search", help="choose an augmentation policy for N good images and a detector, without "
                                        "any defect (held-out good images against synthetic defects); writes the "
                                        "policy (--out, .json) and every candidate's fitness beside it")
    ps.add_argument("folder", type=Path, nargs="?", help="folder of good images (or --category with --n)")
    add_data_args(ps, category_required=False)
    ps.add_argument("--n", type=int, help="with --category: how many training images")
    ps.add_argument("--replicate", type=int, default=0, help="with --category: which seeded subset (default 0)")
    ps.add_argument("--subset-seed", type=int, default=0, help="with --category: the study's subset seed (default 0)")
    ps.add_argument("--method", default="maha-lw", help=f"the detector the policy is for, of {', '.join(method_names())} "
                                                         "(default maha-lw)")
    ps.add_argument("--out", type=Path, required=True, help="policy file to write (.json); the candidates' fitness "
                                                            "goes beside it (<stem>.search.csv)")
    add_force_arg(ps)
    add_param_args(ps)
    ps.add_argument("--budget", type=int, default=32, help="candidate policies (default 32)")
    ps.add_argument("--eta", type=int, default=2, help="successive halving: keep 1/eta per rung (default 2)")
    ps.add_argument("--search-folds", type=int, default=5, help="folds over the good images (default 5)")
    ps.add_argument("--space", type=Path, help="search space file (JSON; default: Table 4's transform families)")
    ps.add_argument("--seed", type=int, default=0, help="seed of the candidates, folds, copies and defects (default 0)")
    add_backbone_args(ps)
    add_cache_arg(ps)
    add_progress_arg(ps)
    ps.set_defaults(func=cmd_policy_search)


def add_score(sub) -> None:
    """The ``score`` command's options."""
    sc = sub.add_parser("score", help="score images with a saved model: score and verdict per image (printed, or "
                                      "--out .csv/.json); heatmap overlays for the detectors that give maps (--heatmaps)")
    sc.add_argument("model", type=Path, help="model folder written by lowdata fit")
    sc.add_argument("images", nargs="+", type=Path, help="image files and/or folders of images")
    sc.add_argument("--format", choices=["table", "csv", "json"],
                    help="output format (default: a table; with --out, from the file's suffix)")
    sc.add_argument("--out", type=Path, help="write the scores to this .csv or .json file")
    add_force_arg(sc)
    sc.add_argument("--heatmaps", type=Path, help=f"{' and '.join(map_methods())} models: folder for the heatmap overlays (default heatmaps)")
    sc.add_argument("--no-heatmaps", action="store_true", help="do not write heatmap overlays")
    sc.add_argument("--allow-other-version", action="store_true",
                    help="use a model written by another lowdata version (scores may differ)")
    add_cache_arg(sc, "keep the scored images' embeddings in this cache folder (default: a temporary folder, "
                      "removed after scoring)")
    add_backbone_args(sc, weights_only=True)
    add_progress_arg(sc)
    sc.set_defaults(func=cmd_score)
