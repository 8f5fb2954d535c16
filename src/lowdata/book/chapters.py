"""The pollution chapter's page (``notebooks/pollution.ipynb``): its checked parameters and its study."""

from __future__ import annotations


import pandas as pd

from ..core.errors import LowdataError
from ..data.roots import read_root
from ..data.sources import load_category
from ..experiments.pollution import PollutionConfig, run_pollution_study
from ..experiments.design import parse_factors
from ..experiments.table import results_path
from ..features.backbones import load_backbone
from ..features.encode import cache_for
from .params import POLLUTION


def run_pollution_category(**values) -> pd.DataFrame:
    """The pollution notebook's study: its parameters checked (type and value, one clear message), then
    :func:`lowdata.experiments.pollution.run_pollution_study` into ``<out_dir>/pollution-<source>-<category>-<backbone>.parquet``."""
    POLLUTION.check(values)
    try:
        rates = tuple(float(r) for r in str(values["rates"]).split(","))
    except ValueError:
        raise LowdataError(f"rates must be comma-separated numbers in [0, 1), got {values['rates']!r}") from None
    source, root = read_root(values["data_root"], values["category"])
    config = PollutionConfig(methods=tuple(m.strip() for m in values["methods"].split(",")), rates=rates,
                             reps=values["reps"], factors=tuple(parse_factors(str(values["aug"]))),
                             seed=values["seed"], ablation_rate=0.10 if values["ablation"] else None).validate()
    data = load_category(source, values["category"], root=root)
    bb = load_backbone(values["backbone"], values["input_size"])
    out = results_path(values["out_dir"], source, values["category"], values["backbone"], "pollution")
    return run_pollution_study(data, bb, cache_for(bb, values["cache_dir"]), config, out, progress=values["progress"])
