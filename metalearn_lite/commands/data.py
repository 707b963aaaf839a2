"""``metalearn data``: generate, fetch, validate and list the course's data sets.

    metalearn data glyphs [--seed S]                         generate and cache Glyphs
    metalearn data omniglot [--download] [--path P] [--small] [--root R]
                                                             fetch/validate real Omniglot
    metalearn data list                                      what is cached, with sizes
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["register"]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data", help="generate, download, validate or list data sets",
        description="Generate the Glyphs set, fetch/validate Omniglot, or list cached data.",
    )
    sub = parser.add_subparsers(dest="data_command", metavar="DATASET")

    glyphs = sub.add_parser("glyphs", help="generate and cache the Glyphs set (offline)")
    glyphs.add_argument("--seed", type=int, default=0, help="generation seed (default 0)")
    glyphs.set_defaults(func=_glyphs)

    omniglot = sub.add_parser(
        "omniglot", help="fetch (--download) or validate real Omniglot",
        description="Check that Omniglot is available and decodes; with --download fetch the "
        "official zips (pinned SHA-256) into the cache; with --path read a local zip or folder.",
    )
    omniglot.add_argument("--download", action="store_true", help="download missing zips")
    omniglot.add_argument("--path", type=Path, default=None,
                          help="a local Omniglot zip or extracted folder to validate and cache")
    omniglot.add_argument("--small", action="store_true",
                          help="the two small background sets instead of background + evaluation")
    omniglot.add_argument("--root", type=Path, default=None,
                          help="folder holding the zips (default: the cache's data/omniglot)")
    omniglot.set_defaults(func=_omniglot)

    listing = sub.add_parser("list", help="list the cached data files and their sizes")
    listing.set_defaults(func=_list)

    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _glyphs(args: argparse.Namespace) -> int:
    try:
        from metalearn_lite.data.glyphs import Glyphs
    except ImportError as exc:
        print(f"error: the Glyphs generator is not available ({exc})", file=sys.stderr)
        return 1
    data = Glyphs(background=True, seed=args.seed, generate=True)
    classes = getattr(data, "characters", None)
    summary = f"{len(classes)} characters, " if classes is not None else ""
    print(f"Glyphs (background, seed {args.seed}): {summary}{len(data)} images")
    cache = getattr(data, "cache_path", None)
    if cache is not None:
        print(f"cached at {cache}")
    return 0


def _omniglot(args: argparse.Namespace) -> int:
    from metalearn_lite.data.download import ChecksumError, DownloadError
    from metalearn_lite.data.omniglot import CorruptArchiveError, Omniglot, OmniglotNotFoundError

    if args.path is not None:
        requests = [dict(path=args.path, small=1 if args.small else None)]
    elif args.small:
        requests = [dict(small=1), dict(small=2)]
    else:
        requests = [dict(background=True), dict(background=False)]
    status = 0
    for request in requests:
        try:
            data = Omniglot(root=args.root, download=args.download, **request)
        except (OmniglotNotFoundError, DownloadError, ChecksumError, CorruptArchiveError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
            continue
        counts = sorted(set(data.class_counts()))
        print(f"{data.source}: {len(data.alphabets)} alphabets, {data.num_classes} characters, "
              f"{len(data)} images ({'/'.join(map(str, counts))} per character), 28x28")
        if data.cache_path is not None:
            print(f"  decoded cache: {data.cache_path}")
    return status


def _size(num_bytes: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if num_bytes < 1024 or unit == "GB":
            return f"{num_bytes:.0f} {unit}" if unit == "B" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1024
    return ""  # pragma: no cover


def _list(args: argparse.Namespace) -> int:
    from metalearn_lite.paths import data_dir

    root = data_dir()
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
    if not files:
        print(f"no cached data yet in {root}")
        return 0
    print(f"cached data in {root}:")
    total = 0
    for path in files:
        size = path.stat().st_size
        total += size
        note = "  (incomplete)" if path.name.endswith(".part") else ""
        print(f"  {_size(size):>9}  {path.relative_to(root)}{note}")
    print(f"  {_size(total):>9}  total, {len(files)} files")
    return 0
