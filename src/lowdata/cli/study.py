"""``lowdata study``, ``pollution``, ``refine`` and ``augment-preview``: the experiments of one category."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..autoaug.search import OBJECTIVES, SearchConfig
from ..book.figures import preview_grid
from ..book.study_report import format_summary
from ..core.atomic import atomic_path, check_new_file
from ..core.errors import LowdataError
from ..data.augment import describe, policy_for
from ..data.images import IMAGE_EXTENSIONS, read_image, resize_rgb
from ..detectors.registry import method_names, paper_methods
from ..experiments.design import StudyConfig, parse_factors, parse_sizes, parse_test_aug
from ..experiments.polluted import parse_rate
from ..experiments.pollution import PollutionConfig, recovery, run_pollution_study
from ..experiments.refine import refine_folder
from ..experiments.study import run_study
from ..experiments.table import check_results_path, results_path
from ..features.backbones import load_backbone
from ..features.encode import cache_for
from .common import (add_backbone_args, add_cache_arg, add_data_args, add_force_arg, add_param_args, add_policy_arg,
                     add_progress_arg, add_scheduler_args, add_sroc_args, category_data, given_params, report,
                     scheduler, sroc_config)


def cmd_study(args) -> int:
    if args.out:
        check_results_path(args.out)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    factors = parse_factors(args.aug)
    config = StudyConfig(methods=methods, sizes=[], reps=args.reps, factors=factors,
                         augment_only=parse_factors(args.augment_only), seed=args.seed, aug_seed=args.aug_seed,
                         pixel_size=args.pixel_size, subsets=args.subsets, params=given_params(args),
                         test_aug=parse_test_aug(args.test_aug))
    config.validate()  # before the slow steps: an unknown method fails at once
    data = category_data(args)
    config.sizes = parse_sizes(args.sizes, len(data.train))
    config.validate()
    policy_for(data.category, args.policy)  # a bad policy fails before the backbone is loaded
    with scheduler(args) as runner:  # an unreachable scheduler fails before the backbone is loaded too
        return _study(args, data, config, factors, runner)


def _study(args, data, config, factors, runner) -> int:
    backbone = load_backbone(args.backbone, args.input_size, weights="imagenet")
    out = args.out or results_path("data/results", data.source, data.category, backbone.name)
    report(f"{data.source}/{data.category}: {len(data.train)} training, {len(data.test)} test images; "
          f"{backbone.name} at {backbone.input_size}px; sizes {config.sizes}; {config.reps} replicates "
          f"(1 at the full size); "
          f"augmentation {factors or '-'}{'; augment-only ' + str(config.augment_only) if config.augment_only else ''}")
    if data.notes.get("pixel_metrics"):
        report(f"note: {data.notes['pixel_metrics']}")
    df = run_study(data, backbone, cache_for(backbone, args.cache), config, out, policy=args.policy,
                   progress=not args.no_progress, runner=runner)
    report("", format_summary(df), f"\nresults: {out} ({len(df)} rows of this run)")
    return 0


def cmd_augment_preview(args) -> int:
    kind = args.out.suffix.lstrip(".").lower()
    if kind not in ("png", "jpg", "jpeg", "pdf", "svg"):
        raise LowdataError(f"--out {args.out}: give a .png, .jpg, .pdf or .svg file for the preview")
    check_new_file(args.out, "--out", args.force)
    data = category_data(args)
    policy = policy_for(data.category, args.policy)
    rng = np.random.default_rng(args.seed)
    picks = sorted(rng.choice(len(data.train), size=min(args.images, len(data.train)), replace=False))
    images = [resize_rgb(read_image(data.train[i].path), args.size) for i in picks]
    fig = preview_grid(images, policy, copies=args.copies, seed=args.seed,
                       titles=[data.train[i].path.name for i in picks])
    with atomic_path(args.out) as tmp:
        fig.savefig(tmp, dpi=80, format=kind)
    report(f"{policy.name}: {describe(policy)}\n{len(images)} images x {args.copies} copies -> {args.out}")
    return 0


def cmd_refine(args) -> int:
    for option, target in (("--keep-list", args.keep_list), ("--csv", args.csv)):
        if target is not None and (target.suffix.lower() in IMAGE_EXTENSIONS or target.is_dir()):
            raise LowdataError(f"{option} {target} is {'a folder' if target.is_dir() else 'named like an image'}: "
                               "give a text file (nothing of yours is replaced)")
        if target is not None:
            check_new_file(target, option, args.force)
    if args.keep_list is not None and args.csv is not None and args.keep_list.resolve() == args.csv.resolve():
        raise LowdataError(f"--keep-list and --csv name the same file {args.csv}: give two files")
    config = sroc_config(args)
    df = refine_folder(args.folder, method=args.method, backbone=args.backbone, input_size=args.input_size,
                       config=config, cache_dir=args.cache, progress=not args.no_progress)
    removed = df[df["verdict"] == "remove"]
    report(f"{len(df)} images; SROC ({config.label()}, method {args.method}) would remove "
          f"{len(removed)}; nothing is deleted")
    report((df if args.all else removed).round(3).reset_index(drop=True) if len(removed) or args.all else "")
    if args.keep_list:
        with atomic_path(args.keep_list) as tmp:
            Path(tmp).write_text("".join(f"{p}\n" for p in df.loc[df["verdict"] == "keep", "image"].sort_values()))
        report(f"kept images: {args.keep_list}")
    if args.csv:
        with atomic_path(args.csv) as tmp:
            df.to_csv(tmp, index=False)
        report(f"every image's score: {args.csv}")
    return 0


def cmd_pollution(args) -> int:
    if args.out:
        check_results_path(args.out)
    data = category_data(args)
    rates = tuple(parse_rate(r) for r in args.rates.split(","))
    config = PollutionConfig(methods=tuple(m.strip() for m in args.methods.split(",")), rates=rates, reps=args.reps,
                             factors=tuple(parse_factors(args.aug)), sroc=sroc_config(args), seed=args.seed,
                             ablation_rate=None if args.no_ablation else args.ablation_rate)
    bb = load_backbone(args.backbone, args.input_size)
    out = args.out or results_path("data/results", data.source, data.category, args.backbone, "pollution")
    df = run_pollution_study(data, bb, cache_for(bb, args.cache), config, out, progress=not args.no_progress)
    report(recovery(df).pivot_table(index=["method", "aug_factor", "rate"], columns="refinement",
                                    values="auroc").round(3), f"results: {out}; moved files: {out}.moved.csv")
    return 0


def cmd_fitness_check(args) -> int:
    from ..experiments.autoaug import AutoAugConfig
    from ..experiments.fitness import auto_vs_hand, correlations_by_fitness, run_fitness_check

    if args.out:
        check_results_path(args.out)
    data = category_data(args)
    config = AutoAugConfig(methods=[m.strip() for m in args.methods.split(",") if m.strip()],
                           sizes=parse_sizes(args.sizes, len(data.train)), reps=args.reps, factor=args.factor,
                           seed=args.seed, search=SearchConfig(budget=args.budget, seed=args.search_seed,
                                                               folds=args.search_folds, grades=args.grades or (1.0,),
                                                               objective=args.objective, prior_z=args.prior_z)).validate()
    bb = load_backbone(args.backbone, args.input_size)
    out = args.out or results_path("data/results", data.source, data.category, args.backbone, "fitness")
    df = run_fitness_check(data, bb, cache_for(bb, args.cache), config, out, progress=not args.no_progress,
                           every=not args.chosen_only)
    report("Spearman correlation of each fitness with the real AUROC (mean over replicates):",
           correlations_by_fitness(df).round(3), "real AUROC, chosen policy against hand-made and none:",
           auto_vs_hand(df).round(4), f"results: {out} ({len(df)} rows)")
    return 0


def add_fitness_check(sub) -> None:
    """The ``fitness-check`` command's options."""
    fc = sub.add_parser("fitness-check", help="does the policy search's fitness rank policies as the category's real "
                                              "defects do? every candidate's fitness beside its real AUROC, and their "
                                              "Spearman correlation (a results table in data/results)")
    add_data_args(fc)
    fc.add_argument("--methods", default="maha-lw", help=f"of {', '.join(method_names())} (default maha-lw)")
    fc.add_argument("--sizes", default="10", help="training images N (default 10)")
    fc.add_argument("--reps", type=int, default=5, help="replicates, one search each (default 5)")
    fc.add_argument("--factor", type=int, default=10, help="copies per image of each candidate's fit (default 10)")
    fc.add_argument("--budget", type=int, default=32, help="candidate policies of each search (default 32)")
    fc.add_argument("--search-seed", type=int, default=0, help="seed of the candidates, folds and defects")
    fc.add_argument("--search-folds", type=int, default=5, help="folds over the good images (default 5)")
    fc.add_argument("--grades", help="strengths of fainter synthetic defects besides the full ones, e.g. 0.25,0.5")
    fc.add_argument("--chosen-only", action="store_true", help="fit only the chosen, hand-made and no augmentation on "
                    "the real defects (auto against hand; no correlation)")
    fc.add_argument("--prior-z", type=float, default=SearchConfig.prior_z, help="keep the default policy unless the "
                    f"winner beats it by this many fold standard errors (default {SearchConfig.prior_z:g}; 0: no prior)")
    fc.add_argument("--objective", default=SearchConfig.objective, choices=list(OBJECTIVES),
                    help=f"the fitness the search ranks by (default {SearchConfig.objective}; graded, tpr need --grades)")
    fc.add_argument("--seed", type=int, default=0, help="seed of the training subsets (the study's, default 0)")
    fc.add_argument("--out", type=Path)
    add_backbone_args(fc)
    add_cache_arg(fc)
    add_progress_arg(fc)
    fc.set_defaults(func=cmd_fitness_check)


def add_study(sub) -> None:
    """The ``study`` command's options."""
    methods, paper = method_names(), ",".join(paper_methods())
    st = sub.add_parser("study", help="the sample-size study of one category (resumable): a results table "
                                      "(data/results/study-<source>-<category>-<backbone>.parquet) and a summary")
    add_data_args(st)
    add_policy_arg(st)
    add_backbone_args(st)
    st.add_argument("--methods", default=paper, help=f"comma-separated, of {', '.join(methods)} (default: {paper})")
    st.add_argument("--sizes", default="auto", help="'auto' (5..50 by 5, then by 10, and the maximum) or e.g. 5,10,max")
    st.add_argument("--reps", type=int, default=5, help="replicates per sample size (default 5)")
    st.add_argument("--aug", default="0", help="augmentation factors, e.g. 0,10 (copies per training image)")
    st.add_argument("--augment-only", default="", help="factors run without the original images, e.g. 1 (Figure 6)")
    st.add_argument("--test-aug",
                    help="test-time augmentation: score each test image and K augmented views of it (the category's "
                         "policy, seeded by --aug-seed), their scores averaged; each fit is scored once per K and "
                         "once alone (e.g. 4, or 2,4; default: the image alone)")
    st.add_argument("--seed", type=int, default=0, help="seed of the training subsets (default 0)")
    st.add_argument("--aug-seed", type=int, default=0, help="seed of the augmented copies (default 0)")
    st.add_argument("--pixel-size", type=int, default=224, help="resolution of PaDiM's pixel AUROC (default 224)")
    st.add_argument("--subsets", default="independent",
                    help="independent (a fresh subset for every size, the default) or nested (one seeded "
                         "permutation per replicate, its first N images: smaller subsets inside larger ones)")
    add_param_args(st)
    add_cache_arg(st)
    st.add_argument("--out", type=Path, help="results table, .parquet or .csv "
                                             "(default data/results/study-<source>-<category>-<backbone>.parquet)")
    add_progress_arg(st)
    add_scheduler_args(st)
    st.set_defaults(func=cmd_study)


def add_augment_preview(sub) -> None:
    """The ``augment-preview`` command's options."""
    a = sub.add_parser("augment-preview", help="save a grid of augmented training images (--out: an image file)")
    add_data_args(a)
    add_policy_arg(a)
    a.add_argument("--images", type=int, default=4, help="training images to show (default 4)")
    a.add_argument("--copies", type=int, default=5, help="augmented copies per image (default 5)")
    a.add_argument("--size", type=int, default=380, help="size the images are resized to first (default 380)")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--out", type=Path, required=True, help="image file to write, e.g. preview.png")
    add_force_arg(a)
    a.set_defaults(func=cmd_augment_preview)


def add_refine(sub) -> None:
    """The ``refine`` command's options."""
    r = sub.add_parser("refine", help="list the images SROC would remove from a folder of training images (writes "
                                      "only --keep-list and --csv; nothing is deleted)")
    r.add_argument("folder", type=Path)
    r.add_argument("--method", default="maha-lw", help=f"{', '.join(method_names())} (default maha-lw)")
    r.add_argument("--keep-list", type=Path, help="write the kept images' paths to this file (nothing is deleted)")
    r.add_argument("--csv", type=Path, help="write every image's score and verdict to this CSV")
    add_force_arg(r, "--keep-list and --csv")
    r.add_argument("--all", action="store_true", help="print every image, not only the removed ones")
    add_sroc_args(r)
    r.set_defaults(func=cmd_refine)


def add_pollution(sub) -> None:
    """The ``pollution`` command's options."""
    po = sub.add_parser("pollution", help="polluted training sets: robustness and refinement study of a category "
                                          "(a results table in data/results, and the moved files' list beside it)")
    add_data_args(po)  # no --policy: the pollution study uses each category's own (recorded as policy_digest)
    po.add_argument("--methods", default=",".join(PollutionConfig.methods), help=f"of {', '.join(method_names())}")
    po.add_argument("--rates", default=",".join(f"{r:g}" for r in PollutionConfig.rates),
                    help="pollution rates in [0, 1) (or 10%%)")
    po.add_argument("--reps", type=int, default=PollutionConfig.reps)
    po.add_argument("--aug", default=",".join(map(str, PollutionConfig.factors)),
                    help="augmentation factors (detectors that consume maps, PaDiM: 0 only)")
    po.add_argument("--ablation-rate", type=float, default=0.1, help="rate of the SROC ablation (default 0.1)")
    po.add_argument("--no-ablation", action="store_true")
    po.add_argument("--out", type=Path)
    add_sroc_args(po)
    po.set_defaults(func=cmd_pollution)
