"""The ``lowdata`` command.

``lowdata encode``          encode the default data (ELPV mono and poly, offline) into the cache and
                            print what was encoded and how fast; ``--data ROOT`` adds the categories
                            of an MVTec-layout folder.
``lowdata download mvtec``  fetch, verify and extract MVTec AD (needs internet).
``lowdata categories``      list the categories of an MVTec-layout folder.

Errors in the user's input print one line, ``lowdata: error: ...``, and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from .errors import LowdataError


def _format_warning(message, category, filename, lineno, line=None):
    return f"lowdata: warning: {message}\n"


def _targets(args) -> list[tuple[str, str]]:
    from .elpv import ELPV_CATEGORIES
    from .mvtec import list_categories

    targets = [] if args.no_elpv else [("elpv", c) for c in ELPV_CATEGORIES]
    if args.data is not None:
        found = list_categories(args.data)
        if not found:
            raise LowdataError(f"no category in the MVTec AD layout (<category>/train/good) under {args.data}")
        targets += [("mvtec", c) for c in found]
    if args.categories:
        wanted = [c.strip() for c in args.categories.split(",") if c.strip()]
        known = {c for _, c in targets}
        unknown = [c for c in wanted if c not in known]
        if unknown:
            raise LowdataError(f"unknown category {', '.join(map(repr, unknown))}; available: {', '.join(sorted(known))}")
        targets = [t for t in targets if t[1] in wanted]
    if not targets:
        raise LowdataError("nothing to encode: give --data ROOT or drop --no-elpv")
    return targets


def cmd_encode(args) -> int:
    from .backbones import load_backbone
    from .dataset import load_category
    from .encode import cache_for, encode

    targets = _targets(args)
    datasets = [load_category(src, cat, root=args.data) for src, cat in targets]
    backbone = load_backbone(args.backbone, args.input_size, weights=args.weights or "imagenet")
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
        print(f"{cat:<22}{split:<7}{n:>9}{cached:>9}{enc:>9}{sec:>9.1f}{rate}")
    total_enc = sum(r[4] for r in rows)
    total_sec = sum(r[5] for r in rows)
    print(f"{'total':<29}{sum(r[2] for r in rows):>9}{sum(r[3] for r in rows):>9}{total_enc:>9}{total_sec:>9.1f}"
          + (f"{total_enc / total_sec:9.1f}" if total_enc else f"{'-':>9}"))
    return 0


def cmd_download(args) -> int:
    from .download import MVTEC_SHA256, MVTEC_URL, download_mvtec

    sha = None if (args.sha256 or "").lower() == "none" else (args.sha256 or MVTEC_SHA256)
    found = download_mvtec(args.to, url=args.url or MVTEC_URL, sha256=sha, keep_archive=not args.remove_archive,
                           progress=not args.no_progress)
    print(f"MVTec AD in {args.to}: {len(found)} categories ({', '.join(found)})")
    return 0


def cmd_categories(args) -> int:
    from .dataset import load_category
    from .mvtec import list_categories

    found = list_categories(args.data)
    if not found:
        raise LowdataError(f"no category in the MVTec AD layout (<category>/train/good) under {args.data}")
    for c in found:
        counts = load_category("mvtec", c, root=args.data).counts()
        print(f"{c:<14}" + "  ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .backbones import BACKBONES, DEFAULT_BACKBONE

    p = argparse.ArgumentParser(prog="lowdata", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("encode", help="encode data into the embedding cache and report speed")
    e.add_argument("--data", type=Path, help="root of an MVTec-layout folder whose categories are added")
    e.add_argument("--categories", help="comma-separated categories to encode (default: all)")
    e.add_argument("--no-elpv", action="store_true", help="leave out the ELPV categories")
    e.add_argument("--backbone", default=DEFAULT_BACKBONE, choices=BACKBONES)
    e.add_argument("--input-size", type=int, help="input size in pixels (default 380)")
    e.add_argument("--weights", help="efficientnet-b4 only: local copy of Keras' efficientnetb4_notop.h5")
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
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.formatwarning = _format_warning
    try:
        return args.func(args)
    except LowdataError as exc:
        print(f"lowdata: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lowdata: interrupted (finished cache entries are kept)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
