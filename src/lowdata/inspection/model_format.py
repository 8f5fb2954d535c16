"""What a model folder's ``model.json`` may hold: its format, and its schema (checked on every read, so that a
damaged or forged file is one clear line, never a wrong model)."""

from __future__ import annotations

import re

from ..core import schema as S
from ..detectors.registry import method_names
from ..features.base import MAX_INPUT_SIZE, MIN_INPUT_SIZE
from ..features.keras_backbone import RUNTIMES
from .threshold import MAX_THRESHOLD, MIN_THRESHOLD, RULES as THRESHOLD_RULES

FORMAT = "lowdata-model"
FORMAT_VERSION = 1
#: the arrays file's name: named by the first 12 hex digits of its SHA-256
ARRAYS_NAME = re.compile(r"detector-[0-9a-f]{12}\.npz")


_SHA256 = S.Str(pattern="[0-9a-f]{64}")


def model_schema() -> S.Dict:
    """The schema of ``model.json`` (the methods: those registered now)."""
    return S.Dict({
        "format": S.Str((FORMAT,)), "format_version": S.Int(), "lowdata_version": S.Str(max_len=100),
        "created": S.Str(max_len=100),
        "backbone": S.Dict({"name": S.Str(), "input_size": S.Int(MIN_INPUT_SIZE, MAX_INPUT_SIZE),
                            "weights_digest": S.Str(max_len=200), "levels": S.List(S.Str(max_len=100), 1, 16),
                            "level_shapes": S.List(S.List(S.Int(1, 1 << 16), 3, 3), 1, 16),
                            "runtime": S.Str(RUNTIMES)}, optional=("runtime",)),
        "preprocessing": S.Opt(S.Dict()),
        "detector": S.Dict({"method": S.Str(method_names()), "score": S.Str(), "params": S.Dict()}),
        "threshold": S.Dict({"value": S.Num(MIN_THRESHOLD, MAX_THRESHOLD), "rule": S.Str(THRESHOLD_RULES),
                             "fpr": S.Num(0, 1, lo_open=True, hi_open=True), "folds": S.Int(0, 10 ** 7),
                             "seed": S.Int(), "oof_scores": S.List(S.Num()), "note": S.Str()},
                            optional=("folds", "seed", "oof_scores", "note")),
        "augmentation": S.Opt(S.Dict({"policy": S.Dict(), "digest": S.Str(max_len=200), "copies": S.Int(1, 10 ** 6),
                                      "seed": S.Int(), "test_views": S.Int(0, 10 ** 6)}, optional=("test_views",))),
        "policy_search": S.Opt(S.Dict(values=S.Any())),
        "training": S.Dict({"n_images": S.Int(1, 10 ** 7), "folder": S.Opt(S.Str()),
                            "files": S.List(S.Dict({"name": S.Str(), "sha256": S.Str(max_len=200)})),
                            "image_sizes": S.List(S.List(S.Int(1, 10 ** 6), 2, 2)),
                            "duplicates_dropped": S.List(S.Str()), "seed": S.Int()},
                           optional=("folder", "files", "duplicates_dropped", "seed")),
        "timings": S.Opt(S.Dict(values=S.Any())),
        "arrays": S.Dict({"file": S.Str(pattern=ARRAYS_NAME.pattern), "sha256": _SHA256, "bytes": S.Int(0, 1 << 40),
                          "names": S.List(S.Str(pattern=r"[A-Za-z0-9_.]{1,100}"), 1, 10_000)}),
    }, optional=("created", "preprocessing", "augmentation", "policy_search", "timings"))
