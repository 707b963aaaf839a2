"""Glyphs: an Omniglot-shaped few-shot data set generated offline from matplotlib's fonts
(chapter 01, "Few-shot image data").

About 36 "alphabets" (Unicode scripts and symbol blocks), about 1,900 characters, each drawn
by 20 "drawers": a font variant re-stroked with a round pen, affine jitter and smooth elastic
noise (see :mod:`metalearn_lite.data.glyph_render`; which characters, and the fixed
background/evaluation split, are in :mod:`metalearn_lite.data.glyph_alphabets`).

Generated once per seed (well under two minutes on 2 cores) and cached as
``data_dir()/glyphs-v2-seed{seed}.npz`` (``$METALEARN_LITE_CACHE`` moves the cache)::

    from metalearn_lite.data.glyphs import Glyphs
    train = Glyphs(background=True)        # generates on first use, then loads in < 1 s
    test = Glyphs(background=False)
    image, label = train[0]                # FloatTensor [1, 28, 28] in [0, 1], ink = 1
    train.class_images().shape             # [num_classes, 20, 1, 28, 28]
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from filelock import FileLock
from torch.utils.data import Dataset

from ..atomic import atomic_writer
from ..paths import data_dir
from . import glyph_alphabets as catalogue
from . import glyph_render as render

__all__ = [
    "GLYPHS_VERSION", "NUM_DRAWERS", "Glyphs", "GlyphsNotFoundError", "generate_glyphs",
    "glyphs_path", "load_glyphs", "save_glyphs", "plot_contact_sheet",
]

GLYPHS_VERSION = "glyphs-v2"   # bump when the generator's output changes; old caches regenerate (v1 caches
                               # could hold glyphs garbled by the forked-worker font race)
NUM_DRAWERS = 20
STYLE_IOU_MIN = 0.35           # a font variant must draw the character like the reference font


class GlyphsNotFoundError(FileNotFoundError):
    """The Glyphs cache file is missing (or stale) and generation was not allowed."""


# ----------------------------------------------------------------------------- generation

def _draw_character(job: tuple[int, int, int, render.GlyphStyle]) -> tuple[np.ndarray, np.ndarray]:
    """Draw one character ``num_drawers`` times. job = (code_point, seed, num_drawers, style).

    Each drawer picks a font variant at random among those that draw the character in
    the same shape as the reference font (the first usable one, DejaVu Sans when it can):
    a font that maps the code point but draws nothing, or draws something else (IoU of
    thick renders < ``STYLE_IOU_MIN``, e.g. a monospace arrow squeezed to a chevron), is
    dropped. Returns (images uint8 ``[D, 28, 28]``, font index into ``usable_fonts()``
    ``[D]``). The RNG depends only on (seed, code point), so the result does not depend on
    which other characters are generated, in which order, or by which worker.
    """
    code_point, seed, num_drawers, style = job
    rng = np.random.default_rng([seed, code_point])
    fonts = render.usable_fonts()
    available = [i for i, f in enumerate(fonts) if code_point in render.font_charmap(f)]
    strokes: dict[int, np.ndarray] = {}

    def drawable(font: int) -> bool:
        if font not in strokes:
            strokes[font] = render.stroke_points(render.render_clean(fonts[font], code_point))
        return len(strokes[font]) >= render.MIN_STROKE_POINTS

    reference = next((font for font in available if drawable(font)), None)
    if reference is None:
        raise ValueError(f"no usable font draws U+{code_point:04X}")
    reference_render = render.thick_render(strokes[reference])
    checked = {reference}
    choice = []
    for _ in range(num_drawers):
        while True:
            font = available[int(rng.integers(len(available)))]
            if font in checked:
                break
            if drawable(font):
                this = render.thick_render(strokes[font])
                iou = (this & reference_render).sum() / max((this | reference_render).sum(), 1)
                if iou >= STYLE_IOU_MIN:
                    checked.add(font)
                    break
            available.remove(font)  # the reference itself is never removed
        choice.append(font)
    images = render.draw_drawers([strokes[font] for font in choice], rng, style)
    return images, np.array(choice, dtype=np.uint8)


def _default_workers(num_characters: int) -> int:
    if num_characters < 64:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cpus, 8))


def _pool_context():
    # fork starts workers in milliseconds and does not re-run the user's __main__ (a script
    # without an ``if __name__ == "__main__"`` guard stays safe); the workers only run NumPy.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") and "fork" in methods else "spawn")


def generate_glyphs(seed: int = 0, characters: Sequence[str] | None = None,
                    num_drawers: int = NUM_DRAWERS, workers: int | None = None,
                    progress: bool = True, style: render.GlyphStyle | None = None) -> dict[str, np.ndarray]:
    """Generate the Glyphs images (no caching; :class:`Glyphs` caches).

    seed: same seed, same arrays, bit for bit. characters: class names such as
    ``"Greek/U+03B1"`` to draw only those (for quick tests); default: the full catalogue
    selection (:func:`glyph_alphabets.select_characters`); passing its names gives the
    same arrays. Classes are listed in catalogue order, then by code point. workers:
    processes (default: the CPUs this process may use, at most 8; 1 runs in this process).
    style: how the drawers vary (:class:`~metalearn_lite.data.glyph_render.GlyphStyle`; default
    the published set's, :data:`~metalearn_lite.data.glyph_render.DEFAULT_STYLE`).

    Returns a dict of NumPy arrays (``C`` classes, ``A`` alphabets, ``D`` drawers):
    ``images`` uint8 ``[C, D, 28, 28]`` (ink = 255), ``alphabet_index`` int16 ``[C]``,
    ``characters`` str ``[C]``, ``code_points`` int32 ``[C]``, ``alphabets`` str ``[A]``,
    ``alphabet_kinds`` str ``[A]`` ("letters"/"symbols"), ``background`` bool ``[A]``,
    ``drawer_fonts`` uint8 ``[C, D]`` (index into ``fonts``), ``fonts`` str ``[F]``,
    ``version``, ``seed``, ``matplotlib_version``, ``style`` (0-d; the style's :attr:`key`,
    ``""`` for the default).
    """
    import matplotlib
    from tqdm.auto import tqdm

    if num_drawers < 1:
        raise ValueError(f"num_drawers must be >= 1, got {num_drawers}")
    style = render.DEFAULT_STYLE if style is None else style
    if not isinstance(style, render.GlyphStyle):
        raise TypeError(f"style must be a glyph_render.GlyphStyle, got {type(style).__name__}")
    if characters is None:
        characters = catalogue.select_characters(progress=progress).names
    # one path for the full selection and for explicit names, so both give the same arrays
    parsed = [catalogue.parse_character_name(name) for name in characters]
    if not parsed:
        raise ValueError("characters must name at least one character, got an empty list")
    alphabet_names = []
    for name, _ in parsed:
        catalogue.alphabet_by_name(name)  # raises for unknown alphabets
        if name not in alphabet_names:
            alphabet_names.append(name)
    order = {a.name: i for i, a in enumerate(catalogue.ALPHABETS)}
    alphabet_names.sort(key=order.__getitem__)
    parsed.sort(key=lambda p: (order[p[0]], p[1]))
    code_points = [cp for _, cp in parsed]
    alphabet_index = [alphabet_names.index(name) for name, _ in parsed]
    if len(set(code_points)) != len(code_points):
        raise ValueError("characters must not repeat a code point")

    jobs = [(cp, int(seed), int(num_drawers), style) for cp in code_points]
    workers = _default_workers(len(jobs)) if workers is None else max(1, int(workers))
    bar = tqdm(total=len(jobs), desc=f"drawing Glyphs (seed {seed})", unit="char", disable=not progress)
    try:
        if workers == 1:
            results = []
            for job in jobs:
                results.append(_draw_character(job))
                bar.update()
        else:
            with _pool_context().Pool(workers) as pool:
                results = []
                for result in pool.imap(_draw_character, jobs, chunksize=8):
                    results.append(result)
                    bar.update()
    finally:
        bar.close()

    kinds = [catalogue.alphabet_by_name(n).kind for n in alphabet_names]
    background = [n in catalogue.BACKGROUND_ALPHABETS for n in alphabet_names]
    names = [catalogue.character_name(alphabet_names[a], cp) for a, cp in zip(alphabet_index, code_points)]
    return {
        "version": np.array(GLYPHS_VERSION),
        "seed": np.array(int(seed), dtype=np.int64),
        "matplotlib_version": np.array(matplotlib.__version__),
        "style": np.array(style.key),
        "images": np.stack([r[0] for r in results]),
        "drawer_fonts": np.stack([r[1] for r in results]),
        "fonts": np.array(render.usable_fonts()),
        "code_points": np.array(code_points, dtype=np.int32),
        "alphabet_index": np.array(alphabet_index, dtype=np.int16),
        "characters": np.array(names),
        "alphabets": np.array(alphabet_names),
        "alphabet_kinds": np.array(kinds),
        "background": np.array(background, dtype=bool),
    }


# ----------------------------------------------------------------------------- cache

_REQUIRED = ("version", "images", "alphabet_index", "characters", "alphabets", "alphabet_kinds")


def glyphs_path(seed: int = 0, root: str | os.PathLike | None = None,
                style: render.GlyphStyle | None = None) -> Path:
    """``root/glyphs-v2-seed{seed}.npz`` (``...-seed{seed}-{style.key}.npz`` for another
    style); root defaults to ``metalearn_lite.paths.data_dir()``."""
    root = data_dir() if root is None else Path(root)
    key = "" if style is None else style.key
    return root / f"{GLYPHS_VERSION}-seed{int(seed)}{'-' + key if key else ''}.npz"


def save_glyphs(arrays: dict[str, np.ndarray], path: str | os.PathLike) -> Path:
    """Write ``arrays`` (from :func:`generate_glyphs`) as a compressed ``.npz``, atomically:
    a crash mid-write leaves the old file (or none), never a partial one."""
    path = Path(path)
    with atomic_writer(path) as handle:
        np.savez_compressed(handle, **arrays)
    return path


def load_glyphs(path: str | os.PathLike, style: render.GlyphStyle | None = None) -> dict[str, np.ndarray]:
    """Read a Glyphs ``.npz``. Raises ``GlyphsNotFoundError`` if it is missing and
    ``ValueError`` if it is unreadable, of another format version, or (with ``style``) drawn
    in another style (a file without a ``style`` entry is the default style's)."""
    path = Path(path)
    if not path.is_file():
        raise GlyphsNotFoundError(f"no Glyphs file at {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{path} is not a readable Glyphs file ({exc})") from exc
    missing = [key for key in _REQUIRED if key not in arrays]
    if missing:
        raise ValueError(f"{path} is not a Glyphs file: missing {missing}")
    if str(arrays["version"]) != GLYPHS_VERSION:
        raise ValueError(f"{path} holds format {str(arrays['version'])!r}, expected {GLYPHS_VERSION!r}")
    if style is not None and str(arrays.get("style", "")) != style.key:
        raise ValueError(f"{path} holds the Glyphs style {str(arrays.get('style', ''))!r}, expected {style.key!r}")
    images = arrays["images"]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[2:] != (28, 28):
        raise ValueError(f"{path}: images must be uint8 [C, D, 28, 28], got {images.dtype} {list(images.shape)}")
    return arrays


# ----------------------------------------------------------------------------- data set

class Glyphs(Dataset):
    """Omniglot-shaped data generated from matplotlib's fonts, shaped like torchvision's
    ``Omniglot``: one item per (character, drawer).

    root: cache folder (default ``metalearn_lite.paths.data_dir()``). background: the
    background (training) alphabets if True, else the evaluation alphabets (a fixed split,
    :data:`glyph_alphabets.BACKGROUND_ALPHABETS`). transform: applied to the image tensor
    ``[1, 28, 28]``; target_transform: to the class index. seed: which generated set.
    generate: create (and cache) the file if it is missing or stale; if False, raise
    :class:`GlyphsNotFoundError` saying how to create it. progress: show tqdm bars.
    style: another way of drawing (a :class:`~metalearn_lite.data.glyph_render.GlyphStyle`,
    e.g. a thinner pen), generated and cached as its own file; default the published set.

    ``self[i]`` -> (image FloatTensor ``[1, 28, 28]`` in [0, 1] with ink = 1, class index
    int in ``[0, num_classes)``). Attributes: ``alphabets`` (names in this split),
    ``alphabet_kinds``, ``characters`` (one name per class, e.g. ``"Greek/U+03B1"``),
    ``targets`` (class index per item), ``cache_path``, ``num_drawers``.
    """

    def __init__(self, root: str | os.PathLike | None = None, background: bool = True,
                 transform: Callable | None = None, target_transform: Callable | None = None,
                 seed: int = 0, generate: bool = True, progress: bool = True,
                 style: render.GlyphStyle | None = None) -> None:
        self.root = data_dir() if root is None else Path(root)
        self.style = render.DEFAULT_STYLE if style is None else style
        self.background = bool(background)
        self.transform = transform
        self.target_transform = target_transform
        self.seed = int(seed)
        self.cache_path = glyphs_path(self.seed, self.root, self.style)
        arrays = self._load_or_generate(generate, progress)

        alphabets = [str(a) for a in arrays["alphabets"]]
        in_split = [(a in catalogue.BACKGROUND_ALPHABETS) == self.background for a in alphabets]
        keep = np.flatnonzero(np.array(in_split)[arrays["alphabet_index"]])
        split_alphabets = [a for a, ok in zip(alphabets, in_split) if ok]
        kinds = [str(k) for k, ok in zip(arrays["alphabet_kinds"], in_split) if ok]
        remap = {name: i for i, name in enumerate(split_alphabets)}

        self._images = torch.from_numpy(np.ascontiguousarray(arrays["images"][keep]))  # uint8 [C, D, 28, 28]
        self.num_drawers = int(self._images.shape[1]) if len(keep) else NUM_DRAWERS
        self.alphabets: list[str] = split_alphabets
        self.alphabet_kinds: list[str] = kinds
        self.characters: list[str] = [str(c) for c in arrays["characters"][keep]]
        self.character_alphabet: list[int] = [remap[alphabets[i]] for i in arrays["alphabet_index"][keep]]
        self.targets: list[int] = [c for c in range(len(keep)) for _ in range(self.num_drawers)]

    def _load_or_generate(self, generate: bool, progress: bool) -> dict[str, np.ndarray]:
        try:
            return load_glyphs(self.cache_path, self.style)
        except (GlyphsNotFoundError, ValueError) as exc:
            if generate and not isinstance(exc, GlyphsNotFoundError):
                warnings.warn(f"regenerating Glyphs: {exc}", stacklevel=3)
            if not generate:
                default = not self.style.key
                how = (f"`metalearn data glyphs --seed {self.seed}` or " if self.root == data_dir() and default else "")
                style = "" if default else f", style={self.style!r}"
                raise GlyphsNotFoundError(
                    f"Glyphs (seed {self.seed}) not found or stale at {self.cache_path} ({exc}). "
                    f"Create it with {how}Glyphs(root={str(self.root)!r}, seed={self.seed}{style}, generate=True) "
                    f"(offline; under a minute on 2 idle cores)."
                ) from exc
        # One generator at a time per cache file: a second process (another notebook, a parallel
        # test worker) waits for the first, then loads what it wrote instead of redoing the work.
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{self.cache_path}.lock"):
            try:
                return load_glyphs(self.cache_path, self.style)
            except (GlyphsNotFoundError, ValueError):
                pass
            arrays = generate_glyphs(seed=self.seed, progress=progress, style=self.style)
            save_glyphs(arrays, self.cache_path)
        return arrays

    def __len__(self) -> int:
        return self._images.shape[0] * self._images.shape[1]

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index must be in [0, {len(self)}), got {index}")
        index %= len(self)
        target, drawer = divmod(index, self.num_drawers)
        image = self._images[target, drawer].to(torch.float32).div_(255.0).unsqueeze(0)
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def class_images(self) -> torch.Tensor:
        """All images, class-major: float32 ``[num_classes, num_drawers, 1, 28, 28]`` in
        [0, 1], ink = 1 (the dense form the episode sampler uses; no transform applied)."""
        return self._images.to(torch.float32).div_(255.0).unsqueeze(2)

    def __repr__(self) -> str:
        split = "background" if self.background else "evaluation"
        style = f", style {self.style.key}" if self.style.key else ""
        return (f"Glyphs({split}, seed={self.seed}{style}: {len(self.alphabets)} alphabets, "
                f"{len(self.characters)} characters x {self.num_drawers} drawers)")


# ----------------------------------------------------------------------------- plotting

def plot_contact_sheet(dataset_or_images: Any, num_classes: int = 10, num_drawers: int = 10,
                       ax=None, title: str | None = None):
    """A grid of samples: one row per character, one column per drawer.

    dataset_or_images: a :class:`Glyphs` (or anything with ``class_images()``), the dict
    from :func:`generate_glyphs`, or an array/tensor ``[C, D, 28, 28]`` or
    ``[C, D, 1, 28, 28]`` (uint8 0..255 or float 0..1, ink high). Rows are ``num_classes``
    classes spread evenly over ``C``. Ink is drawn dark on white. Returns the Figure.
    """
    import matplotlib.pyplot as plt

    names = None
    source = dataset_or_images
    if hasattr(source, "class_images"):
        names = list(getattr(source, "characters", [])) or None
        images = source.class_images()
    elif isinstance(source, dict):
        images, names = source["images"], [str(c) for c in source.get("characters", [])] or None
    else:
        images = source
    images = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if images.ndim == 5 and images.shape[2] == 1:
        images = images[:, :, 0]
    if images.ndim != 4:
        raise ValueError(f"images must be [C, D, H, W] or [C, D, 1, H, W], got {list(images.shape)}")
    images = images.astype(np.float32) / (255.0 if images.dtype == np.uint8 else 1.0)
    rows = np.unique(np.linspace(0, images.shape[0] - 1, min(num_classes, images.shape[0])).round().astype(int))
    cols = min(num_drawers, images.shape[1])
    h, w = images.shape[2:]
    sheet = np.full((len(rows) * (h + 2), cols * (w + 2)), 0.35, np.float32)  # gray grid lines
    for r, c in enumerate(rows):
        for d in range(cols):
            sheet[r * (h + 2) + 1:r * (h + 2) + 1 + h, d * (w + 2) + 1:d * (w + 2) + 1 + w] = images[c, d]
    if ax is None:
        fig, ax = plt.subplots(figsize=(0.45 * cols + 2.2, 0.45 * len(rows) + 0.6))
    else:
        fig = ax.figure
    ax.imshow(1.0 - sheet, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([(w + 2) * d + w / 2 for d in range(cols)])
    ax.set_xticklabels([str(d) for d in range(cols)], fontsize=7)
    ax.set_xlabel("drawer")
    ax.set_yticks([(h + 2) * r + h / 2 for r in range(len(rows))])
    ax.set_yticklabels([names[c] if names else f"class {c}" for c in rows], fontsize=7)
    ax.tick_params(length=0)
    ax.set_title(title if title is not None else f"{len(rows)} characters x {cols} drawers")
    fig.tight_layout()
    return fig
