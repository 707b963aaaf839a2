"""Render a character from matplotlib's bundled fonts and redraw it like a pen would.

One job: turn ``(font, code point)`` into pixels. Three stages:

1. :func:`render_clean` rasterises the glyph with matplotlib's FreeType wrapper and fits it
   into a ``[CANVAS, CANVAS]`` box (aspect kept), ink = 1.
2. :func:`stroke_points` skeletonises it (``skimage.morphology.skeletonize``) into the
   centre line a pen would follow, as points in a frame where ``[-1, 1]`` spans the
   28 x 28 output. Filled areas are replaced by their outline first (a person draws
   the rim of a black disc, not its medial axis).
3. :func:`draw_drawers` warps those points per "drawer" (affine jitter + smooth elastic
   noise) and draws them with a round pen of random, slightly varying width. Working on
   points, not images, avoids any image resampling: the warp is exact and cheap.

Everything is plain NumPy, element-wise (no multithreaded reductions), so a seed gives
bit-identical images run after run, whatever the number of threads or worker processes.
Another CPU (NumPy's SIMD ``sin``/``sqrt``) or another FreeType/matplotlib version may
move a few pixels by a grey level; the cache records the matplotlib version.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "CANVAS", "IMAGE_SIZE", "MIN_STROKE_POINTS", "font_dir", "usable_fonts", "is_excluded_font",
    "font_charmap", "render_clean", "stroke_points", "draw_drawers", "canonical_render", "thick_render",
    "GlyphStyle", "DEFAULT_STYLE",
]

IMAGE_SIZE = 28          # output images are [IMAGE_SIZE, IMAGE_SIZE]
CANVAS = 56              # clean renders and skeletons live on [CANVAS, CANVAS]
_FIT = 0.80              # the glyph's longer side fills this fraction of the box
_MIN_FILL_EM = 0.55      # glyphs smaller than this (in em) are not magnified to fill the box
_RENDER_PT = 64          # FreeType size before fitting (pixels per em at 72 dpi)
_DENSE_POINTS = 260      # skeletons with more points than this are drawn with a finer pen
MIN_STROKE_POINTS = 8     # fewer skeleton points than this: the font does not draw it
_FILL_DEPTH = 8.0        # px on CANVAS: ink deeper than this is "filled", drawn as outline

# Fonts that must never be used: LastResort claims every code point and draws boxes;
# cm* (Computer Modern), STIXSize* and STIXNonUni* are TeX fonts with remapped or
# size-variant glyphs; the *Display fonts hold only a few dozen glyphs.
_EXCLUDED_PREFIXES = ("LastResort", "cm", "STIXSiz", "STIXNonUni")
_EXCLUDED_SUBSTRINGS = ("Display",)
_FAMILY_ORDER = ("DejaVuSans.", "DejaVuSans-", "DejaVuSerif", "DejaVuSansMono", "STIXGeneral")


def font_dir() -> Path:
    """matplotlib's ``mpl-data/fonts/ttf`` folder."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def is_excluded_font(name: str) -> bool:
    """True for fonts Glyphs must not use (placeholder-box and TeX fonts), by file name."""
    return name.startswith(_EXCLUDED_PREFIXES) or any(s in name for s in _EXCLUDED_SUBSTRINGS)


def _family_rank(name: str) -> tuple[int, str]:
    # DejaVu Sans regular first: it is the canonical font for duplicate detection.
    if name == "DejaVuSans.ttf":
        return (0, name)
    for rank, prefix in enumerate(_FAMILY_ORDER):
        if name.startswith(prefix) and not (prefix == "DejaVuSans-" and "Mono" in name):
            return (rank + 1, name)
    return (len(_FAMILY_ORDER) + 1, name)


@functools.lru_cache(maxsize=1)
def usable_fonts() -> tuple[str, ...]:
    """File names (in ``font_dir()``) of the fonts Glyphs draws from, canonical font first.

    DejaVu Sans / Serif / Sans Mono and STIXGeneral with all their style variants
    (16 files with matplotlib 3.x). Raises ``RuntimeError`` if none is found.
    """
    names = [p.name for p in font_dir().glob("*.ttf") if not is_excluded_font(p.name)]
    names = [n for n in names if n.startswith(("DejaVu", "STIXGeneral"))]
    if not names:
        raise RuntimeError(f"no usable fonts found in {font_dir()} (expected DejaVu*.ttf, STIXGeneral*.ttf)")
    return tuple(sorted(names, key=_family_rank))


@functools.lru_cache(maxsize=None)
def _font(name: str):
    from matplotlib.ft2font import FT2Font

    font = FT2Font(os.fspath(font_dir() / name))
    font.set_size(_RENDER_PT, 72)
    return font


# An open FT2Font reads glyph data lazily from its file. A forked child inherits the
# parent's open files *with a shared offset*, so two worker processes reading the same
# inherited font at once get each other's bytes (wrong or blank glyphs, differing from run
# to run). Each child therefore forgets the handles and opens its own (matplotlib's font
# cache does the same).
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_font.cache_clear)


@functools.lru_cache(maxsize=None)
def font_charmap(name: str) -> frozenset[int]:
    """Code points that font ``name`` maps to a glyph."""
    return frozenset(_font(name).get_charmap())


def _resize(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from PIL import Image  # a matplotlib dependency

    pil = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
    out = pil.resize((shape[1], shape[0]), Image.Resampling.LANCZOS if min(shape) < min(img.shape)
                     else Image.Resampling.BICUBIC)
    return np.asarray(out, dtype=np.float32) / 255.0


def render_clean(font_name: str, code_point: int) -> np.ndarray:
    """The glyph, fitted into the box (aspect kept, centred), ink = 1.

    Returns float32 ``[CANVAS, CANVAS]`` in [0, 1]; all zeros if the font draws nothing
    or cannot load the glyph.
    """
    font = _font(font_name)
    out = np.zeros((CANVAS, CANVAS), np.float32)
    try:
        font.set_text(chr(code_point), 0.0)
    except RuntimeError:  # mapped in the charmap but the glyph fails to load
        return out
    font.draw_glyphs_to_bitmap(antialiased=True)
    raw = np.asarray(font.get_image(), dtype=np.float32) / 255.0
    rows = np.flatnonzero(raw.max(axis=1) > 0.25)
    cols = np.flatnonzero(raw.max(axis=0) > 0.25)
    if rows.size == 0 or cols.size == 0:
        return out
    crop = raw[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    # Fill the box, but magnify a small glyph (a dot, a two-dot Braille cell) at most as
    # much as one _MIN_FILL_EM em tall: otherwise dots would turn into big filled discs.
    scale = min(_FIT * CANVAS / max(crop.shape), _FIT * CANVAS / (_MIN_FILL_EM * _RENDER_PT))
    h = max(1, int(round(crop.shape[0] * scale)))
    w = max(1, int(round(crop.shape[1] * scale)))
    fitted = _resize(crop, (h, w))
    top, left = (CANVAS - h) // 2, (CANVAS - w) // 2
    out[top:top + h, left:left + w] = fitted
    return out


def stroke_points(clean: np.ndarray) -> np.ndarray:
    """Centre-line points of a clean render, in the output frame.

    clean: ``[CANVAS, CANVAS]`` float in [0, 1]. Returns float32 ``[N, 2]`` as (x, y), where
    x, y in ``[-1, 1]`` span the ``IMAGE_SIZE`` output (x right, y down); ``N`` may be 0.
    Points are skeleton pixels, spaced ~0.5 output pixels apart.
    """
    from scipy.ndimage import distance_transform_edt
    from skimage.morphology import skeletonize

    if clean.shape != (CANVAS, CANVAS):
        raise ValueError(f"clean must be [{CANVAS}, {CANVAS}], got {list(clean.shape)}")
    ink = clean >= 0.5
    if not ink.any():
        return np.zeros((0, 2), np.float32)
    depth = distance_transform_edt(ink)
    if depth.max() > _FILL_DEPTH:            # keep only a rim of filled areas
        ink = ink & (depth <= _FILL_DEPTH * 0.6)
    skeleton = skeletonize(ink)
    rows, cols = np.nonzero(skeleton)
    xy = np.stack([(cols + 0.5) / CANVAS * 2 - 1, (rows + 0.5) / CANVAS * 2 - 1], axis=1)
    return xy.astype(np.float32)


# Pixel offsets around a pen position that its disc can touch (radius < 2.4 px).
_REACH = 3
_OFFSETS = np.stack(np.meshgrid(np.arange(-_REACH, _REACH + 1), np.arange(-_REACH, _REACH + 1),
                                indexing="ij"), axis=-1).reshape(-1, 2)  # (dy, dx) [49, 2]


def _splat(xy: np.ndarray, radius_px: np.ndarray) -> np.ndarray:
    """Union of anti-aliased discs: centres ``xy [N, 2]`` (frame units), radii
    ``radius_px [N]`` (output pixels, < 2.4). Returns coverage float32 ``[IMAGE_SIZE**2]``.

    Each pixel's ink is ``clip(radius - distance + 0.5, 0, 1)`` for its nearest disc edge;
    only the 7 x 7 pixels around each centre are visited (a max is order-independent,
    so this is deterministic)."""
    size = IMAGE_SIZE
    out = np.zeros(size * size, np.float32)
    if len(xy) == 0:
        return out
    centre = (xy.astype(np.float32) + np.float32(1.0)) * np.float32(size / 2) - np.float32(0.5)
    base = np.rint(centre).astype(np.int64)
    px = base[:, None, 0] + _OFFSETS[None, :, 1]                                # [N, 49]
    py = base[:, None, 1] + _OFFSETS[None, :, 0]
    dx = px.astype(np.float32) - centre[:, None, 0]
    dy = py.astype(np.float32) - centre[:, None, 1]
    coverage = np.clip(radius_px.astype(np.float32)[:, None] - np.sqrt(dx * dx + dy * dy) + np.float32(0.5),
                       0.0, 1.0)
    inside = (px >= 0) & (px < size) & (py >= 0) & (py < size) & (coverage > 0)
    np.maximum.at(out, (py * size + px)[inside], coverage[inside])
    return out


def _smooth_field(rng: np.random.Generator, xy: np.ndarray, num_waves: int, freq: float,
                  dims: int) -> np.ndarray:
    """A smooth random field at points ``xy [N, 2]``: ``[N, dims]``, roughly unit RMS.

    Sum of random low-frequency plane waves (random Fourier features).
    """
    omega = rng.normal(0.0, freq, size=(dims, num_waves, 2)).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, size=(dims, num_waves)).astype(np.float32)
    amp = rng.normal(0.0, 1.0, size=(dims, num_waves)).astype(np.float32)
    arg = xy[None, None, :, 0] * omega[..., 0, None] + xy[None, None, :, 1] * omega[..., 1, None]
    waves = amp[..., None] * np.sin(arg + phase[..., None])            # [dims, W, N]
    return (waves.sum(axis=1) * np.float32(np.sqrt(2.0 / num_waves))).T  # [N, dims]


@dataclass(frozen=True)
class GlyphStyle:
    """How the generator's "drawers" vary (each range is sampled uniformly per drawer).

    pen_radius: the round pen's radius in output pixels, before the finer pen of dense glyphs
    and the pressure variation along the stroke. elastic: the amplitude of the smooth random
    displacement of the stroke points (in units of the half-width). rotation_std: degrees
    (clipped at 22). The defaults are the published Glyphs set's; any other style is cached
    as its own file (:attr:`key`).
    """

    pen_radius: tuple[float, float] = (0.7, 1.35)
    elastic: tuple[float, float] = (0.025, 0.06)
    rotation_std: float = 9.0

    def __post_init__(self) -> None:
        for name in ("pen_radius", "elastic"):
            lo, hi = getattr(self, name)
            if not (0 <= lo <= hi):
                raise ValueError(f"GlyphStyle.{name} must be a range (low, high) with 0 <= low <= high, "
                                 f"got {getattr(self, name)!r}")
            object.__setattr__(self, name, (float(lo), float(hi)))
        if not self.rotation_std >= 0:
            raise ValueError(f"GlyphStyle.rotation_std must be >= 0 degrees, got {self.rotation_std!r}")

    @property
    def key(self) -> str:
        """``""`` for the default style, else a short file-name-safe label such as
        ``"pen0.45-0.9"`` naming what differs."""
        parts = []
        if self.pen_radius != DEFAULT_STYLE.pen_radius:
            parts.append(f"pen{self.pen_radius[0]:g}-{self.pen_radius[1]:g}")
        if self.elastic != DEFAULT_STYLE.elastic:
            parts.append(f"elastic{self.elastic[0]:g}-{self.elastic[1]:g}")
        if self.rotation_std != DEFAULT_STYLE.rotation_std:
            parts.append(f"rot{self.rotation_std:g}")
        return "_".join(parts)


DEFAULT_STYLE = GlyphStyle()


def _warp(rng: np.random.Generator, xy: np.ndarray, style: GlyphStyle) -> np.ndarray:
    """One drawer's geometry: affine jitter plus smooth elastic noise. ``[N, 2] -> [N, 2]``."""
    angle = np.deg2rad(np.clip(rng.normal(0.0, style.rotation_std), -22, 22))
    scale = rng.uniform(0.80, 1.06)
    aspect = np.exp(np.clip(rng.normal(0.0, 0.08), -0.2, 0.2))
    shear = np.clip(rng.normal(0.0, 0.15), -0.35, 0.35)
    shift = np.clip(rng.normal(0.0, 0.05, size=2), -0.12, 0.12)
    cos, sin = np.cos(angle), np.sin(angle)
    rot = np.array([[cos, -sin], [sin, cos]])
    lin = rot @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([scale * aspect, scale / aspect])
    lin = lin.astype(np.float32)
    out = xy[:, :1] * lin[:, 0] + xy[:, 1:] * lin[:, 1] + shift.astype(np.float32)
    elastic = rng.uniform(*style.elastic)
    out = out + np.float32(elastic) * _smooth_field(rng, xy, num_waves=4, freq=2.2, dims=2)
    return out


def draw_drawers(points: list[np.ndarray], rng: np.random.Generator, style: GlyphStyle | None = None) -> np.ndarray:
    """Draw one character once per drawer, each with its own geometry and pen.

    points: one ``[N_d, 2]`` array per drawer (the skeleton of the font variant that drawer
    picked, from :func:`stroke_points`). style: how drawers vary (default
    :data:`DEFAULT_STYLE`). Returns uint8 ``[D, IMAGE_SIZE, IMAGE_SIZE]``, ink = 255,
    background 0.
    """
    style = DEFAULT_STYLE if style is None else style
    out = np.zeros((len(points), IMAGE_SIZE * IMAGE_SIZE), np.float32)
    for d, xy in enumerate(points):
        warped = _warp(rng, xy, style)
        # A dense glyph (many skeleton points) gets a finer pen, or it turns into a blot.
        radius_px = rng.uniform(*style.pen_radius) * np.clip(np.sqrt(_DENSE_POINTS / max(len(xy), 1)), 0.55, 1.0)
        pressure = 1.0 + 0.25 * np.tanh(_smooth_field(rng, xy, num_waves=3, freq=3.0, dims=1)[:, 0])
        out[d] = _splat(warped, radius_px * pressure)
    return np.round(out * 255).astype(np.uint8).reshape(len(points), IMAGE_SIZE, IMAGE_SIZE)


def canonical_render(points: np.ndarray) -> np.ndarray:
    """Binarised pen render with no jitter and a fixed pen, for duplicate detection.

    points: ``[N, 2]`` from :func:`stroke_points`. Returns bool ``[IMAGE_SIZE, IMAGE_SIZE]``.
    """
    radius = np.full(len(points), 1.2, np.float32)
    return (_splat(points, radius) >= 0.5).reshape(IMAGE_SIZE, IMAGE_SIZE)


def thick_render(points: np.ndarray) -> np.ndarray:
    """Binarised render with a wide pen (radius 2.5 px), to compare two fonts' versions
    of a character with some tolerance. points ``[N, 2]`` -> bool ``[IMAGE_SIZE, IMAGE_SIZE]``."""
    radius = np.full(len(points), 2.5, np.float32)
    return (_splat(points, radius) >= 0.5).reshape(IMAGE_SIZE, IMAGE_SIZE)
