"""``metalearn info``: versions, device, cache paths, data sets and checkpoints.

The first thing to run when something does not work, and what to paste into a bug
report. It only *looks*: it imports no data loader and writes nothing, so it works on
a half-set-up machine. ``--json`` prints the same facts machine-readably.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
from pathlib import Path

from .. import checkpoints, paths

__all__ = ["register", "run", "collect_info", "format_info", "SHIPPED_CHECKPOINTS", "shipped_models"]

# The folder of shipped models (defined once, in metalearn_lite.checkpoints); kept as an alias.
SHIPPED_CHECKPOINTS = checkpoints.SHIPPED_DIR

# Distribution names whose versions we report (None when not installed).
PACKAGES = [
    "metalearn-lite", "torch", "numpy", "matplotlib", "scikit-image", "tqdm",
    "ipywidgets", "jupyterlab", "ipykernel", "nbval", "pytest",
]

# File types worth naming inside a data directory (the rest is only counted).
ARCHIVE_SUFFIXES = (".npz", ".zip", ".npy", ".pt", ".json")
MAX_ARCHIVES_LISTED = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "info",
        help="show versions, device, cache paths and available data",
        description="Show versions, device (CPU threads, CUDA/MPS), cache paths, the data "
        "sets present in the cache and the checkpoints available. Reads only; writes nothing.",
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    info = collect_info()
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=False))
    else:
        print(format_info(info))
    return 0


# ----------------------------------------------------------------------- collecting
def collect_info() -> dict:
    """All facts as a JSON-serialisable dict.

    Keys: ``versions`` {package: version or None}, ``python`` {version, executable,
    platform}, ``device`` {cpu_count, cpus_available, torch_threads, cuda, mps},
    ``paths`` {env_var, env_override, cache_dir, data_dir, checkpoint_dir, *_exists},
    ``datasets`` [entries of data_dir], ``checkpoints`` {shipped_dir, registry, shipped, user}:
    ``shipped`` is the registry of shipped models (:func:`shipped_models`), ``user`` the files
    in your checkpoint folder.
    """
    return {
        "versions": _versions(),
        "python": {
            "version": platform.python_version(),
            "executable": sys.executable,
            "platform": platform.platform(),
        },
        "device": _device(),
        "paths": _paths(),
        "datasets": _datasets(paths.data_dir()),
        "checkpoints": {
            "shipped_dir": str(checkpoints.SHIPPED_DIR),
            "registry": str(checkpoints.SHIPPED_DIR / checkpoints.REGISTRY_FILE),
            "shipped": shipped_models(),
            "user": _files(paths.checkpoint_dir()),
        },
    }


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    if versions["torch"] is not None:
        # The build matters (2.13.0+cpu vs +cu130), and PyPI's CUDA wheels record a bare
        # "2.13.0" as their distribution version: report what torch itself says.
        try:
            import torch

            versions["torch"] = str(torch.__version__)
        except Exception:  # a broken install still gets its distribution version
            pass
    return versions


def _device() -> dict:
    try:
        cpus_available = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus_available = os.cpu_count()
    device = {"cpu_count": os.cpu_count(), "cpus_available": cpus_available}
    try:
        import torch
    except ImportError as exc:  # a broken install is exactly when `info` is run
        device.update(torch_threads=None, cuda={"available": False, "error": str(exc)},
                      mps={"available": False})
        return device
    cuda = {"available": bool(torch.cuda.is_available()), "version": torch.version.cuda}
    if cuda["available"]:
        cuda["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    mps_backend = getattr(torch.backends, "mps", None)
    mps = {"available": bool(mps_backend is not None and mps_backend.is_available())}
    device.update(torch_threads=torch.get_num_threads(), cuda=cuda, mps=mps)
    return device


def _paths() -> dict:
    override = os.environ.get(paths.CACHE_ENV)
    found = {
        "env_var": paths.CACHE_ENV,
        "env_override": override or None,
        "cache_dir": paths.cache_dir(),
        "data_dir": paths.data_dir(),
        "checkpoint_dir": paths.checkpoint_dir(),
    }
    out = {}
    for key, value in found.items():
        if isinstance(value, Path):
            out[key] = str(value)
            out[f"{key}_exists"] = value.is_dir()
        else:
            out[key] = value
    return out


def _kind(name: str) -> str:
    """A guess from the name only: ``glyphs``, ``omniglot`` or ``other``."""
    lower = name.lower()
    if "glyph" in lower:
        return "glyphs"
    if "omniglot" in lower or lower.startswith(("images_background", "images_evaluation")):
        return "omniglot"
    return "other"


def _datasets(data_dir: Path) -> list[dict]:
    """One entry per top-level file or folder of ``data_dir`` (sorted by name).

    Each: ``name``, ``kind`` (glyphs/omniglot/other, from the name), ``type``
    (file/dir), ``size_bytes``; folders add ``num_files`` and ``archives`` (up to
    20 relative paths of .npz/.zip/.npy/.pt/.json files inside).
    """
    if not data_dir.is_dir():
        return []
    entries = []
    for entry in sorted(data_dir.iterdir(), key=lambda p: p.name):
        if entry.name.startswith(".") or entry.name.endswith(".tmp"):
            continue  # hidden files and atomic-write leftovers
        if entry.is_file():
            entries.append({"name": entry.name, "kind": _kind(entry.name), "type": "file",
                            "size_bytes": entry.stat().st_size})
        elif entry.is_dir():
            size, count, archives = 0, 0, []
            for root, _dirs, files in os.walk(entry):
                for fname in files:
                    path = Path(root) / fname
                    try:
                        size += path.stat().st_size
                    except OSError:
                        continue
                    count += 1
                    if fname.endswith(ARCHIVE_SUFFIXES) and len(archives) < MAX_ARCHIVES_LISTED:
                        archives.append(str(path.relative_to(entry)))
            entries.append({"name": entry.name, "kind": _kind(entry.name), "type": "dir",
                            "size_bytes": size, "num_files": count, "archives": sorted(archives)})
    return entries


def shipped_models() -> list[dict]:
    """One dict per registry entry (sorted by name): ``name``, ``file``, ``size_bytes`` (recorded),
    ``present`` (the file is there with that size; the hash is checked on load, not here),
    ``model`` (class name), ``config``, ``data``, ``licence``, ``metrics`` (names) and ``command``."""
    out = []
    for name, e in sorted(checkpoints.registry().items()):
        path = checkpoints.SHIPPED_DIR / e["file"]
        out.append({"name": name, "file": e["file"], "size_bytes": e["size"],
                    "present": path.is_file() and path.stat().st_size == e["size"],
                    "model": e.get("model", {}).get("class"), "config": e.get("model", {}).get("config"),
                    "data": e.get("data"), "licence": e.get("licence"), "metrics": sorted(e.get("metrics", {})),
                    "command": e.get("command")})
    return out


def _files(folder: Path) -> list[dict]:
    """Plain files directly in ``folder`` (``name``, ``size_bytes``); [] if absent."""
    if not folder.is_dir():
        return []
    return [
        {"name": p.name, "size_bytes": p.stat().st_size}
        for p in sorted(folder.iterdir(), key=lambda p: p.name)
        if p.is_file() and not p.name.startswith((".", "__"))
    ]


# ----------------------------------------------------------------------- formatting
def _size(num_bytes: int) -> str:
    value = float(num_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_info(info: dict) -> str:
    """The human-readable report printed by ``metalearn info``."""
    lines = [f"metalearn-lite {info['versions'].get('metalearn-lite') or '(not installed)'}", ""]
    py = info["python"]
    lines += ["Versions", f"  {'python':<15}{py['version']}  ({py['executable']})"]
    for name, version in info["versions"].items():
        if name != "metalearn-lite":
            lines.append(f"  {name:<15}{version or '-- not installed'}")
    lines.append(f"  {'platform':<15}{py['platform']}")

    dev = info["device"]
    cuda, mps = dev["cuda"], dev["mps"]
    cuda_text = ("available: " + ", ".join(cuda.get("devices", []))) if cuda["available"] else "not available"
    if cuda.get("error"):
        cuda_text = f"unknown (torch failed to import: {cuda['error']})"
    lines += [
        "",
        "Device",
        f"  {'CPU':<15}{dev['cpus_available']} cores available of {dev['cpu_count']}; "
        f"torch uses {dev['torch_threads']} threads",
        f"  {'CUDA':<15}{cuda_text}",
        f"  {'MPS':<15}{'available' if mps['available'] else 'not available'}",
    ]

    p = info["paths"]
    source = f"from ${p['env_var']}" if p["env_override"] else f"default; set ${p['env_var']} to move it"
    lines += ["", f"Cache ({source})"]
    for key in ("cache_dir", "data_dir", "checkpoint_dir"):
        lines.append(f"  {key:<15}{p[key]}{'' if p[key + '_exists'] else '  (not created yet)'}")

    lines += ["", f"Data sets in {p['data_dir']}"]
    if not info["datasets"]:
        lines.append("  none yet")
    for entry in info["datasets"]:
        extra = f", {entry['num_files']} files" if entry["type"] == "dir" else ""
        lines.append(f"  {entry['name']:<30}{entry['kind']:<10}{_size(entry['size_bytes'])}{extra}")
        for archive in entry.get("archives", []):
            lines.append(f"    {archive}")

    ckpt = info["checkpoints"]
    lines += ["", f"Shipped models (registry: {ckpt.get('registry', ckpt['shipped_dir'])})"]
    if not ckpt["shipped"]:
        lines.append("  none")
    for m in ckpt["shipped"]:
        missing = "" if m["present"] else "  MISSING: re-create with its command (metalearn info --json)"
        lines.append(f"  {m['name']:<30}{m['model'] or '?':<20}{_size(m['size_bytes']):>9}  {m['file']}{missing}")
        lines.append(f"    data: {m['data']}")
        lines.append(f"    licence: {m['licence']}")
    lines += ["", "Your checkpoints"]
    if not ckpt["user"]:
        lines.append("  none")
    for f in ckpt["user"]:
        lines.append(f"  {f['name']:<40}{_size(f['size_bytes'])}")
    return "\n".join(lines)
