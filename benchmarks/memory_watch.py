"""Peak memory of a command and every process it starts: anonymous RSS (what memory maps of the feature
packs do not count: they are file pages the kernel can drop) and file-backed RSS, sampled every second.

    .venv/bin/python benchmarks/memory_watch.py -- make run

Prints, at the end: the peak of the sum over the process tree, and the peak of the largest single process,
for RssAnon and RssFile (Linux /proc). The command's exit status is returned.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _tree(pid: int) -> list[int]:
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += _children(p)
    return seen


def _rss(pid: int) -> tuple[int, int]:
    anon = file = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                anon = int(line.split()[1]) * 1024
            elif line.startswith("RssFile:"):
                file = int(line.split()[1]) * 1024
    except OSError:
        pass
    return anon, file


def main() -> int:
    argv = sys.argv[1:]
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print(__doc__)
        return 2
    proc = subprocess.Popen(argv)
    peak = {"anon_sum": 0, "anon_one": 0, "file_sum": 0, "file_one": 0}
    while proc.poll() is None:
        sizes = [_rss(p) for p in _tree(proc.pid)]
        peak["anon_sum"] = max(peak["anon_sum"], sum(a for a, _ in sizes))
        peak["anon_one"] = max(peak["anon_one"], max((a for a, _ in sizes), default=0))
        peak["file_sum"] = max(peak["file_sum"], sum(f for _, f in sizes))
        peak["file_one"] = max(peak["file_one"], max((f for _, f in sizes), default=0))
        time.sleep(1.0)
    print(f"memory: anonymous RSS peak {peak['anon_sum'] / 1e9:.2f} GB over all processes "
          f"({peak['anon_one'] / 1e9:.2f} GB the largest one); file-backed RSS peak {peak['file_sum'] / 1e9:.2f} GB "
          f"({peak['file_one'] / 1e9:.2f} GB the largest)", file=sys.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
