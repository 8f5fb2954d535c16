"""The chapter "Choosing the augmentation automatically" (``notebooks/autoaug.ipynb``, once per category, and
``notebooks/autoaug-summary.ipynb``): the policy searched on each replicate's own training images against the
hand-made one (Table 4, or ``default`` where Table 4 has no row) and no augmentation, on real defects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..autoaug.search import SearchConfig
from ..data.augment import policy_for
from ..data.images import read_image, resize_rgb
from ..data.roots import read_root
from ..data.sources import load_category, source_label
from ..data.synthetic import GENERATORS, defect_examples
from .plots import add_caption, category_names
from ..detectors.registry import method_label, method_order
from ..experiments.autoaug import KINDS, AutoAugConfig, comparison, read_autoaug, run_autoaug
from ..experiments.fitness import correlations_by_fitness, rank_correlations, read_fitness, run_fitness_check
from ..experiments.design import sizes_within
from ..experiments.table import results_path
from ..features.backbones import load_backbone
from ..features.encode import cache_for, source_key
from .params import AUTOAUG
from .summary import of_run

KIND_LABELS = {"none": "no augmentation", "hand": "hand-made (Table 4 / default)", "auto": "automatic"}
_FAMILIES = {"flip h": lambda p: p.flip_horizontal, "flip v": lambda p: p.flip_vertical, "rot90": lambda p: p.rot90,
             "translate": lambda p: any(p.translate_px), "rotate": lambda p: p._enabled("rotate_deg"),
             "zoom": lambda p: p._enabled("zoom"), "add": lambda p: p._enabled("add"),
             "multiply": lambda p: p._enabled("multiply")}


def _page_setup(values: dict, reps: int):
    """The page's category data, its checked configuration with ``reps`` replicates, its backbone and the sizes'
    note (:func:`run_autoaug_category`, :func:`run_fitness_category`)."""
    AUTOAUG.check(values)
    source, root = read_root(values["data_root"], values["category"])
    data = load_category(source, values["category"], root=root)
    sizes, note = sizes_within(values["sizes"], len(data.train), values["category"])
    config = AutoAugConfig(methods=[m.strip() for m in values["methods"].split(",") if m.strip()], sizes=sizes,
                           reps=reps, factor=values["factor"], seed=values["seed"],
                           search=SearchConfig(budget=values["budget"], seed=values["search_seed"]))
    return data, config, load_backbone(values["backbone"], values["input_size"]), note


def run_autoaug_category(**values) -> pd.DataFrame:
    """The page's experiment, its parameters checked (one clear message), into
    ``<out_dir>/autoaug-<source>-<category>-<backbone>.parquet``. ``.attrs["note"]``: the sizes left out (more
    than the category's training images), or empty."""
    data, config, bb, note = _page_setup(values, values["reps"])
    out = results_path(values["out_dir"], data.source, values["category"], values["backbone"], "autoaug")
    rows = run_autoaug(data, bb, cache_for(bb, values["cache_dir"]), config, out, progress=values["progress"])
    rows.attrs["note"] = note
    return rows


def run_fitness_category(**values) -> pd.DataFrame:
    """The page's fitness check (:mod:`lowdata.experiments.fitness`): the searches of its first ``check_reps``
    replicates again, every candidate fitted on the real defects, into
    ``<out_dir>/fitness-<source>-<category>-<backbone>.parquet`` (no rows when ``check_reps`` is 0)."""
    if not values["check_reps"]:  # checked, and nothing loaded
        AUTOAUG.check(values)
        return pd.DataFrame()
    data, config, bb, _ = _page_setup(values, values["check_reps"])
    out = results_path(values["out_dir"], data.source, values["category"], values["backbone"], "fitness")
    return run_fitness_check(data, bb, cache_for(bb, values["cache_dir"]), config, out, progress=values["progress"])


def load_fitness(out_dir: str | Path, backbone: str | None = None, input_size: int | None = None,
                 run: dict | None = None) -> pd.DataFrame:
    """Every ``fitness-*.parquet`` table of ``out_dir`` (as :func:`load_autoaug`)."""
    parts = [read_fitness(f) for f in sorted(Path(out_dir).glob("fitness-*.parquet"))]
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return of_run(df, backbone, input_size, run, "autoaug")


def fitness_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per category, detector and N: the Spearman correlation of each fitness with the real AUROC over the
    candidates (mean over the replicates checked), where the chosen candidate ranks by real AUROC (1: the best) and
    the real AUROC of the chosen and of the best candidate."""
    if df.empty:
        return pd.DataFrame()
    df = df.assign(category=category_names(df))
    corr = correlations_by_fitness(df).add_prefix("Spearman: ")
    rank = rank_correlations(df)[["replicates", "candidates", "chosen's rank", "chosen AUROC", "best AUROC"]]
    t = rank.join(corr).reset_index()
    t["method"] = [method_label(m) for m in t["method"]]
    for col in ("candidates", "chosen's rank"):  # counts, shown as such when every one is whole (32, not 32.0)
        if t[col].notna().all() and (t[col] % 1 == 0).all():
            t[col] = t[col].astype(int)
    return t.set_index(["category", "method", "N"]).round(3)


def fitness_figure(df: pd.DataFrame) -> Figure:
    """Every candidate's first-rung fitness (the search's objective) against its real AUROC, one panel per category
    and detector (replicate 0): the chosen one marked in red, no augmentation in black, the hand-made one in green."""
    rep = df[df["replicate"] == df["replicate"].min()].assign(category=category_names(df))
    panels = sorted(set(zip(rep["category"], rep["method"])), key=lambda cm: (cm[0], method_order(cm[1])))
    fig = Figure(figsize=(3.6 * len(panels), 3.0), layout="constrained")
    for ax, (cat, m) in zip(np.atleast_1d(fig.subplots(1, len(panels), squeeze=False)).ravel(), panels):
        g = rep[(rep["category"] == cat) & (rep["method"] == m) & (rep["rung"] >= 0)]
        ax.scatter(g["fitness_first"], g["auroc"], s=12, color="tab:blue", label="candidate")
        for mask, colour, label in ((g["policy"] == "none", "black", "none"), (g["hand"].eq(True), "green", "hand-made"),
                                    (g["chosen"].eq(True), "red", "chosen")):
            ax.scatter(g[mask]["fitness_first"], g[mask]["auroc"], s=40, color=colour, label=label, zorder=3)
        ax.set_title(f"{cat}: {method_label(m)}", fontsize=9)
        ax.set_xlabel("fitness (first rung)")
        ax.set_ylabel("real image AUROC")
    fig.axes[0].legend(fontsize=7)
    return fig


def load_autoaug(out_dir: str | Path, backbone: str | None = None, input_size: int | None = None,
                 run: dict | None = None) -> pd.DataFrame:
    """Every ``autoaug-*.parquet`` table of ``out_dir`` (of ``backbone`` at ``input_size`` if given; with a
    runner's record, only the categories whose page that run completed)."""
    parts = [read_autoaug(f) for f in sorted(Path(out_dir).glob("autoaug-*.parquet"))]
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return of_run(df, backbone, input_size, run, "autoaug")


def auroc_table(df: pd.DataFrame) -> pd.DataFrame:
    """Image AUROC (mean and standard deviation over replicates) of the three policies, per category, method and
    N, with auto minus hand and auto's wins / ties / losses against hand, replicate by replicate."""
    t = comparison(df.assign(category=category_names(df)) if len(df) else df)
    if t.empty:
        return t
    t["method"] = [method_label(m) for m in t["method"]]
    t = t.sort_values(["category", "method", "N"], key=lambda s: s.map(method_order) if s.name == "method" else s)
    return t.set_index(["category", "method", "N"]).round(4)


def chosen_policies(df: pd.DataFrame) -> pd.DataFrame:
    """Per category, method, N and replicate: the policy the search chose, beside the hand-made one."""
    df = df.assign(category=category_names(df)) if len(df) else df
    auto = df[df["kind"] == "auto"]
    hand = df[df["kind"] == "hand"].set_index(["category", "method", "n_train", "replicate"])["transforms"]
    rows = []
    for r in auto.itertuples():
        rows.append({"category": r.category, "method": method_label(r.method), "N": int(r.n_train),
                     "replicate": int(r.replicate), "chosen automatically": r.transforms,
                     "search fitness": round(float(r.search_fitness), 4),
                     "hand-made": hand.get((r.category, r.method, r.n_train, r.replicate), "")})
    return pd.DataFrame(rows).set_index(["category", "method", "N", "replicate"]) if rows else pd.DataFrame()


def family_counts(df: pd.DataFrame) -> pd.DataFrame:
    """How often each transform family is in the automatic policies (fraction of searches), per category,
    beside whether the hand-made policy has it (``yes`` / blank)."""
    rows = []
    auto = df[df["kind"] == "auto"]
    names = category_names(auto) if len(auto) else auto["category"]
    for (name, cat), g in auto.groupby([names, auto["category"]]):
        pols = [_policy_of_row(r) for r in g.itertuples()]
        row = {"category": name, "searches": len(pols)}
        hand = policy_for(cat)
        for fam, on in _FAMILIES.items():
            row[fam] = f"{np.mean([bool(on(p)) for p in pols]):.0%}" + (" (hand: yes)" if on(hand) else "")
        rows.append(row)
    return pd.DataFrame(rows).set_index("category") if rows else pd.DataFrame()


def _policy_of_row(r):
    """The policy of a row, from the fields it records."""
    import json

    from ..data.augment import AugmentPolicy

    return AugmentPolicy.from_dict(json.loads(r.policy_fields))


def search_cost(df: pd.DataFrame) -> pd.DataFrame:
    """Seconds per policy search (mean, max) per method and N, over categories and replicates."""
    auto = df[df["kind"] == "auto"]
    if auto.empty:
        return pd.DataFrame()
    t = auto.groupby(["method", "n_train"])["search_seconds"].agg(["mean", "max", "count"]).round(1)
    t.index = t.index.set_names(["method", "N"])
    t.columns = ["mean s", "max s", "searches"]
    return t


def synthetic_examples(category: str, data_root: str | None, input_size: int | None = None, seed: int = 0) -> Figure:
    """The synthetic defects of the search on one training image of the category (what the fitness tells apart;
    ``data_root`` as the page's parameter: :func:`lowdata.data.roots.read_root`)."""
    source, root = read_root(data_root, category)
    data = load_category(source, category, root=root)
    path = data.train[0].path
    size = input_size or 380
    img = resize_rgb(read_image(path), size)
    return defect_examples(img, content_hash=source_key(path), seed=seed, generators=GENERATORS, variants=2,
                           title=f"{source_label(source)} {category}, {path.name}: the search's synthetic defects "
                                 "(red: the changed region)")


def auroc_figure(df: pd.DataFrame) -> Figure:
    """Mean image AUROC by N of the three policies, one panel per category and method (bars: 1 sd over replicates)."""
    t = comparison(df)
    panels = sorted(set(zip(t["category"], t["method"])), key=lambda cm: (cm[0], method_order(cm[1])))
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(3.6 * cols, 2.9 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, (cat, m) in zip(axes, panels):
        g = t[(t["category"] == cat) & (t["method"] == m)].sort_values("N")
        x = np.arange(len(g))
        for j, kind in enumerate(KINDS):
            if f"{kind} AUROC" in g:
                ax.bar(x + (j - 1) * 0.27, g[f"{kind} AUROC"], 0.27, yerr=g[f"{kind} sd"].fillna(0), capsize=2,
                       label=KIND_LABELS[kind])
        ax.set_xticks(x, [f"N={n}" for n in g["N"]])
        lo = np.nanmin([g[f"{k} AUROC"].min() for k in KINDS if f"{k} AUROC" in g])
        ax.set_ylim(max(0.0, lo - 0.08), 1.0)
        ax.set_title(f"{cat}: {method_label(m)}", fontsize=9)
        ax.set_ylabel("image AUROC")
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    if panels:
        axes[0].legend(fontsize=7, loc="upper right")
        reps = int(df.groupby(["category", "method", "n_train", "kind"])["replicate"].nunique().max())
        add_caption(fig, f"Each bar: the mean image AUROC on the real test defects over {reps} replicate"
                         f"{'s' if reps != 1 else ''} (the study's seeded training subsets; each searched on its own "
                         "images); whisker: 1 sd over replicates.")
    return fig


def verdict(df: pd.DataFrame) -> str:
    """One paragraph (Markdown): where the automatic policy wins against the hand-made one and where it loses,
    by mean AUROC over replicates (a difference under 0.002 counts as a tie)."""
    t = comparison(df)
    if t.empty or "auto - hand" not in t:
        return "*No results.*"
    parts = {"wins": [], "ties": [], "loses": []}
    for r in t.itertuples():
        d = r[t.columns.get_loc("auto - hand") + 1]
        where = f"{r.category} {method_label(r.method)} N={r.N} ({d:+.3f})"
        parts["wins" if d > 0.002 else "loses" if d < -0.002 else "ties"].append(where)
    out = [f"**Auto {k}** against the hand-made policy: {', '.join(v)}." for k, v in parts.items() if v]
    return " ".join(out)
