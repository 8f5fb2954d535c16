"""``lowdata encode``, ``download`` and ``categories``: the data and its embeddings."""

from __future__ import annotations

from pathlib import Path

from ..data.download import download, downloadable
from ..data.sources import SOURCES, available_categories, detect_sources, detected, load_category, source_label
from ..features.backbones import load_backbone
from ..features.encode import cache_for, encode
from .common import add_backbone_args, add_cache_arg, add_progress_arg, report, wanted


def cmd_encode(args) -> int:
    targets = available_categories(args.data, elpv=not args.no_elpv, categories=wanted(args))
    datasets = [load_category(src, cat, root=args.data) for src, cat in targets]
    backbone = load_backbone(args.backbone, args.input_size, weights="imagenet")
    cache = cache_for(backbone, args.cache)
    report(f"backbone {backbone.name} at {backbone.input_size}px, weights {backbone.weights_digest[:16]}; "
          f"levels {', '.join(f'{n} {h}x{w}x{c}' for n, (h, w, c) in zip(backbone.levels, backbone.level_shapes))}")
    report(f"cache {cache.dir}")
    rows = []
    for data in datasets:
        for split, samples in (("train", data.train), ("test", data.test)):
            emb = encode(backbone, [s.path for s in samples], cache, batch_size=args.batch_size,
                         progress=not args.no_progress, desc=f"{data.source}/{data.category} {split}")
            st = emb.stats
            rows.append((f"{data.source}/{data.category}", split, st.images, st.cached, st.encoded,
                         st.seconds, st.images_per_second))
    header = ("category", "split", "images", "cached", "encoded", "seconds", "img/s")
    report("")
    report(f"{header[0]:<22}{header[1]:<7}" + "".join(f"{h:>9}" for h in header[2:]))
    for cat, split, n, cached, enc, sec, ips in rows:
        rate = f"{ips:9.1f}" if enc else f"{'-':>9}"
        report(f"{cat:<22}{split:<7}{n:>9}{cached:>9}{enc:>9}{sec:>9.1f}{rate}")
    total_enc = sum(r[4] for r in rows)
    total_sec = sum(r[5] for r in rows)
    report(f"{'total':<29}{sum(r[2] for r in rows):>9}{sum(r[3] for r in rows):>9}{total_enc:>9}{total_sec:>9.1f}"
          + (f"{total_enc / total_sec:9.1f}" if total_enc else f"{'-':>9}"))
    return 0


def cmd_download(args) -> int:
    digest = None if (args.sha256 or "").lower() == "none" else (args.sha256 or "published")
    root, found = download(args.dataset, args.to, url=args.url, digest=digest, keep_archive=not args.remove_archive,
                           progress=not args.no_progress)
    report(f"{source_label(args.dataset)} in {root}: {len(found)} categories ({', '.join(found)}); "
           f"use it with --data {root}")
    return 0


def cmd_categories(args) -> int:
    found = detect_sources(args.data, args.source)
    detected(args.data, args.source)  # no category in a known layout: one error line saying why
    for category, source, reason in found:
        if source is None:
            report(f"{category:<14}{'-':<10}{reason}")
            continue
        counts = load_category(source, category, root=args.data).counts()
        report(f"{category:<14}{source:<10}" + "  ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def add_encode(sub) -> None:
    """The ``encode`` command's options."""
    e = sub.add_parser("encode", help="encode data into the embedding cache and report speed (writes the cache only)")
    e.add_argument("--data", type=Path, help="root of an MVTec-layout folder whose categories are added")
    e.add_argument("--categories", help="comma-separated categories to encode (default: all)")
    e.add_argument("--no-elpv", action="store_true", help="leave out the ELPV categories")
    add_backbone_args(e)
    add_cache_arg(e)
    e.add_argument("--batch-size", type=int, default=16)
    add_progress_arg(e)
    e.set_defaults(func=cmd_encode)


def add_download(sub) -> None:
    """The ``download`` command's options."""
    d = sub.add_parser("download", help="download a data set (needs internet; writes the archive and its categories "
                                        "in --to)")
    d.add_argument("dataset", choices=downloadable(), help="mvtec, btad, loco, mvtec3d and visa have public archives, "
                                                          "checked against the checksum their module states; mvtec2 "
                                                          "and mpdd say where to get them")
    d.add_argument("--to", type=Path, required=True, help="folder to put the data set in")
    d.add_argument("--url", help="archive URL (default: the data set's official archive); file:// works")
    d.add_argument("--sha256", help="expected checksum of the archive: a SHA-256 (hex, or sha256:HEX), md5:HEX, or "
                                    "'none' to skip the check (default: the published one)")
    d.add_argument("--remove-archive", action="store_true", help="delete the archive after extraction")
    add_progress_arg(d)
    d.set_defaults(func=cmd_download)


def add_categories(sub) -> None:
    """The ``categories`` command's options."""
    c = sub.add_parser("categories", help="list the categories of a data folder, the layout recognised in each and "
                                          "its images (writes nothing)")
    c.add_argument("--data", type=Path, required=True, help="a folder of categories (or a folder of good/ and bad/)")
    c.add_argument("--source", help="read every category in this source's layout (default: the one detected); one of "
                                    + ", ".join(n for n, s in SOURCES.items() if s.detect is not None))
    c.set_defaults(func=cmd_categories)
