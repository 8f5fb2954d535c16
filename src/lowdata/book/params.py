"""One parameter schema per notebook: names, accepted types, defaults and the presets of ``lowdata book``.

A notebook executed by papermill gets its parameters as plain values; its first code cell calls the
package, which checks them against the notebook's schema (:meth:`NotebookSchema.check`): an unknown or
missing name, a wrong type or an unknown backbone is one clear message naming the parameter. The same
schema is what the notebooks' parameter cells must hold (``tests/notebooks/test_notebooks.py`` compares each cell
with :meth:`NotebookSchema.defaults`), what ``lowdata book`` passes (its presets) and where the command
line's defaults come from, so a default is written once, here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.errors import LowdataError
from ..detectors.registry import paper_methods
from ..features.backbones import DEFAULT_BACKBONE, backbone_names

NONE = type(None)


@dataclass(frozen=True)
class Param:
    name: str
    types: tuple  # accepted types (bool is never taken for int)
    default: object
    help: str = ""
    optional: bool = False  # may be left out (a notebook made before it existed): its default is used


@dataclass(frozen=True)
class NotebookSchema:
    notebook: str  # notebooks/<notebook>.ipynb (the summaries share one schema)
    params: tuple[Param, ...]
    presets: dict = field(default_factory=dict)  # preset -> {name: value}, over the defaults

    def __post_init__(self):
        """The ``default`` preset is the parameters' own defaults, for the keys the other presets set (or, when
        they set none, the notebook's own settings): each default is written once, in its :class:`Param`."""
        if self.presets:
            keys = list(dict.fromkeys(k for v in self.presets.values() for k in v)) or \
                [p.name for p in self.params if p.name not in _SHARED]
            default = {p.name: p.default for p in self.params if p.name in keys}
            others = {name: {**default, **values} for name, values in self.presets.items()}
            object.__setattr__(self, "presets", {"default": default, **others})

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def default(self, name: str):
        return next(p.default for p in self.params if p.name == name)

    def defaults(self, preset: str | None = None) -> dict:
        """Every parameter's default (``preset``: with that preset's values)."""
        values = {p.name: p.default for p in self.params}
        if preset is not None:
            if preset not in self.presets:
                raise LowdataError(f"unknown preset {preset!r}; choose from {', '.join(self.presets)}")
            values.update(self.presets[preset])
        return values

    def preset(self, name: str) -> dict:
        """The values a preset sets (the study settings of ``lowdata book --preset``)."""
        return dict(self.presets[name])

    def check(self, values: dict) -> dict:
        """``values`` against the schema: an unknown or missing name, a wrong type or an unknown backbone
        raises one clear :class:`LowdataError`; returns ``values``."""
        spec = {p.name: p.types for p in self.params}
        unknown = sorted(set(values) - set(spec))
        if unknown:
            raise LowdataError(f"unknown notebook parameter {unknown[0]!r}; known: {', '.join(spec)}")
        for p in self.params:
            if p.optional and p.name not in values:
                values[p.name] = p.default
        missing = sorted(set(spec) - set(values))
        if missing:
            raise LowdataError(f"notebook parameter {missing[0]!r} is missing")
        for name, types in spec.items():
            v = values[name]
            if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
                want = " or ".join("None" if t is NONE else t.__name__ for t in types)
                raise LowdataError(f"notebook parameter {name} must be {want}, got {v!r} ({type(v).__name__})")
        if "backbone" in values and values["backbone"] not in backbone_names():
            raise LowdataError(f"unknown backbone {values['backbone']!r}; choose from {', '.join(backbone_names())}")
        return values


_PAPER_METHODS = ",".join(paper_methods())
#: what every per-category notebook takes from the run, not from a preset
_SHARED = ("data_root", "category", "backbone", "input_size", "out_dir", "cache_dir", "seed", "progress")


def _category(*extra: Param) -> tuple[Param, ...]:
    """The parameters every per-category notebook has, around its own."""
    return (Param("data_root", (str, NONE), None, "a folder of categories (SOURCE=FOLDER: in that source's layout), "
                  "or None for the embedded ELPV data"),
            Param("category", (str,), "mono"),
            Param("backbone", (str,), DEFAULT_BACKBONE),
            Param("input_size", (int, NONE), None, "None: 380 px"),
            *extra,
            Param("out_dir", (str,), "data/results"),
            Param("cache_dir", (str, NONE), None, "None: $LOWDATA_CACHE or data/cache"),
            Param("seed", (int,), 0),
            Param("progress", (bool,), False, "progress bars on stderr"))


#: notebooks/category.ipynb: one category's sample-size study
CATEGORY = NotebookSchema("category", _category(
    Param("methods", (str,), _PAPER_METHODS),
    Param("sizes", (str, int), "5,10,20,30,50,100,max", "or 'auto': the paper's grid"),
    Param("reps", (int,), 3),
    Param("aug", (str, int), "0,10", "augmentation factors for every method"),
    Param("sweep", (str, int), "1,5", "more factors, KNN and Mahalanobis only (Figure 5); '' for none"),
    Param("augment_only", (str, int), "1", "factors without the original images (Figure 6); '' for none"),
    Param("subsets", (str,), "independent", "or 'nested': each replicate's smaller subsets inside its larger ones"),
), presets={
    # "default" (added below: the parameters' defaults) is sized so the embedded ELPV data builds the whole book
    # in minutes on 2 cores
    # the paper's protocol: every size of the grid, 5 replicates
    "paper": {"sizes": "auto", "reps": 5, "aug": "0,10", "sweep": "1,5,20", "augment_only": "1"},
    # the few-shot grid of "Beyond the paper" for every chapter; the paper's study keeps its default here
    "fewshot": {},
})

#: notebooks/pollution.ipynb: polluted training sets and their refinement
POLLUTION = NotebookSchema("pollution", _category(
    Param("methods", (str,), "knn,maha-lw", "add padim for the full study (minutes per polluted set at 380 px)"),
    Param("rates", (str, float, int), "0,0.025,0.05,0.1,0.15,0.2"),
    Param("reps", (int,), 3),
    Param("aug", (str, int), "0,1", "augmentation factors (PaDiM and the refinements: without augmentation only)"),
    Param("ablation", (bool,), True, "SROC with one parameter changed at a time, at 10 % pollution"),
), presets={
    # PaDiM's refinement fits a Gaussian per location for every fold and round (minutes per polluted set
    # on ELPV at 380 px) and 10 copies of every defect cost minutes of encoding: both in "paper" only
    "paper": {"methods": "knn,maha-lw,padim", "rates": "0,0.025,0.05,0.1,0.15,0.2", "reps": 5, "aug": "0,10",
              "ablation": True},
    "fewshot": {},
})

#: notebooks/workflow.ipynb: from a folder of ten good images to scores, a threshold and heatmaps
WORKFLOW = NotebookSchema("workflow", _category(
    Param("method", (str,), "padim", "the walkthrough's model (padim gives heatmaps)"),
    Param("methods", (str,), _PAPER_METHODS, "timed, and their thresholds measured"),
    Param("n", (int,), 10, "good images in the folder"),
    Param("reps", (int,), 10, "replicates of the threshold measurement"),
    Param("fprs", (str, float), "0.05,0.01", "target false-positive rates"),
    Param("rules", (str,), "lognormal,conformal,chi2"),
), presets={"paper": {}, "fewshot": {}})  # the chapter's settings are the same for every preset

#: notebooks/beyond.ipynb: PatchCore beside the paper's methods, from 1 to 16 shots, and localization
BEYOND = NotebookSchema("beyond", _category(
    Param("methods", (str,), "knn,maha-lw,padim,patchcore", "PatchCore beside the paper's methods"),
    Param("sizes", (str, int), "1,2,4,8", "training images N (1 to 8 shots; 'max': the category's all)"),
    Param("reps", (int,), 2),
    Param("aug", (str, int), "0,10", "augmentation factors for every method"),
    Param("method_params", (str,), "", "detector parameters, NAME=VALUE, comma-separated ('': their defaults)"),
    Param("test_aug", (str, int), "", "test-time views K compared with none, e.g. '0,4' ('': none)", optional=True),
    Param("heat_n", (int,), 8, "training images of the heatmaps' PaDiM and PatchCore"),
), presets={
    # the default keeps `make run` fast on ELPV (its 516 and 682 test images make every PatchCore score
    # a search among 300 000 test patches); "fewshot" is the grid, "paper" the same
    "fewshot": {"sizes": "1,2,4,8,16,max", "reps": 5, "aug": "0,10", "test_aug": "0,4"},
    "paper": {"sizes": "1,2,4,8,16,max", "reps": 5, "aug": "0,10", "test_aug": "0,4"},
})

#: notebooks/autoaug.ipynb: the augmentation policy chosen automatically against the hand-made one, on real defects
AUTOAUG = NotebookSchema("autoaug", _category(
    Param("methods", (str,), "maha-lw", "the detectors the policy is searched for (one search each)"),
    Param("sizes", (str, int), "10", "training images N"),
    Param("reps", (int,), 5),
    Param("factor", (int,), 10, "copies per training image of the hand-made and the automatic policy"),
    Param("budget", (int,), 32, "candidate policies of each search"),
    Param("search_seed", (int,), 0, "seed of the candidates, folds, copies and synthetic defects"),
    Param("check_reps", (int,), 1, "replicates whose every candidate is also fitted on the real defects (0: none)"),
), presets={
    # the default is one detector at N = 10 (about 4 minutes a category on 2 cores); the whole grid is
    # "paper" / "fewshot" (four detectors, N = 5, 10 and 30: an hour a category)
    "paper": {"methods": "maha-lw,padim,knn,patchcore", "sizes": "5,10,30", "reps": 5, "factor": 10, "budget": 32},
    "fewshot": {"methods": "maha-lw,padim,knn,patchcore", "sizes": "5,10,30", "reps": 5, "factor": 10, "budget": 32},
})

#: notebooks/backbones.ipynb: the sample-size study repeated for several backbones
BACKBONES = NotebookSchema("backbones", _category(
    Param("backbones", (str,), "efficientnet-lite0,efficientnet-lite1,efficientnet-lite2",
          "the backbones compared, on the same subsets"),
    Param("methods", (str,), "knn,maha-lw", "detectors of pooled vectors: no maps kept on disk for the other backbones"),
    Param("sizes", (str, int), "5,10,max", "training images N ('max': the category's all, for the area)"),
    Param("reps", (int,), 2),
    Param("aug", (str, int), "0,10", "augmentation factors for every method"),
), presets={
    # the default keeps `make run` within its budget on ELPV: two detectors of pooled vectors (each other backbone
    # adds minutes of encoding and no maps on disk), 3 sizes, 2 replicates; "paper" and "fewshot" are the issue's
    # grid: the paper's detectors and PatchCore at the category study's sizes, 3 replicates (their maps: about 1 GB
    # per backbone and category at 380 px)
    "paper": {"methods": _PAPER_METHODS + ",patchcore", "sizes": "5,10,20,30,50,100,max", "reps": 3},
    "fewshot": {"methods": _PAPER_METHODS + ",patchcore", "sizes": "5,10,20,30,50,100,max", "reps": 3},
})

#: the summary notebooks (sample-size, augmentation, heatmaps, reproduction): every category's results
SUMMARY = NotebookSchema("summary", (
    Param("results_dir", (str,), "data/results", "the folder of study-*.parquet tables"),
    Param("run_file", (str,), "book/results/run.json", "the runner's record; absent when run by hand"),
    Param("backbone", (str,), DEFAULT_BACKBONE),
    Param("input_size", (int, NONE), None, "None: 380 px"),
    Param("cache_dir", (str, NONE), None, "None: $LOWDATA_CACHE or data/cache"),
    Param("seed", (int,), 0),
    Param("heat_source", (str,), "elpv", "Figure 2's category's source: 'mvtec', 'elpv'... ('' for none)"),
    Param("heat_category", (str,), "mono"),
    Param("data_root", (str, NONE), None, "the root of Figure 2's category (None for ELPV)"),
))

#: the summary notebooks, in the book's order: notebooks/<name>.ipynb -> book/results/<name>.ipynb
SUMMARY_NOTEBOOKS = ("sample-size", "augmentation", "heatmaps", "beyond-summary", "backbones-summary", "autoaug-summary",
                     "reproduction")
#: every notebook's schema
SCHEMAS = {"category": CATEGORY, "pollution": POLLUTION, "workflow": WORKFLOW, "beyond": BEYOND, "backbones": BACKBONES,
           "autoaug": AUTOAUG,
           **{name: SUMMARY for name in SUMMARY_NOTEBOOKS}}
PRESETS = tuple(CATEGORY.presets)
