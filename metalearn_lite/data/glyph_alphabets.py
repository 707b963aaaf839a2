"""Which characters Glyphs uses, grouped into "alphabets", and the fixed split.

One job: the catalogue. An alphabet is a coherent Unicode script or block (letter-like
scripts first, then symbol blocks, marked by ``kind``). :func:`select_characters` walks
the alphabets in catalogue order, takes each candidate code point that a usable font draws,
and keeps it unless its binarised 28 x 28 pen render overlaps an already kept character
with IoU >= ``DUPLICATE_IOU`` (so Latin "A" is kept and Greek Alpha, Cyrillic A are
dropped, globally). At most ``MAX_PER_ALPHABET`` per alphabet; alphabets left with fewer
than ``MIN_PER_ALPHABET`` are dropped.

The background/evaluation split is written out below and never computed, like
Omniglot's: changing it changes every benchmark number, so a test pins it.
"""
from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass

import numpy as np

from . import glyph_render as render

__all__ = [
    "Alphabet", "ALPHABETS", "BACKGROUND_ALPHABETS", "EVALUATION_ALPHABETS",
    "DUPLICATE_IOU", "MAX_PER_ALPHABET", "MIN_PER_ALPHABET", "CharacterSet",
    "alphabet_by_name", "candidate_code_points", "select_characters", "character_name",
    "parse_character_name", "iou_matrix", "canonical_points", "fonts_for",
]

DUPLICATE_IOU = 0.9
MAX_PER_ALPHABET = 60
MIN_PER_ALPHABET = 20
# Unicode general categories that can be a character: letters, numbers, symbols.
_CATEGORIES = ("L", "N", "S")
_MIN_INK_PIXELS = 12          # canonical render with fewer ink pixels counts as blank
_MAX_INK_FRACTION = 0.55      # ...or with more than this is an unreadable blot


@dataclass(frozen=True)
class Alphabet:
    """A named Unicode script or block: ``ranges`` are inclusive code point ranges."""

    name: str
    kind: str                          # "letters" or "symbols"
    ranges: tuple[tuple[int, int], ...]


_L, _S = "letters", "symbols"
# Catalogue order = priority for duplicates: the first alphabet to claim a shape keeps it.
ALPHABETS: tuple[Alphabet, ...] = (
    Alphabet("Latin", _L, ((0x0041, 0x024F), (0x2C60, 0x2C7F), (0xA720, 0xA7FF))),
    Alphabet("Greek", _L, ((0x0370, 0x03E1), (0x03F0, 0x03FF), (0x1F00, 0x1FFF))),
    Alphabet("Cyrillic", _L, ((0x0400, 0x052F), (0xA640, 0xA69F))),
    Alphabet("Armenian", _L, ((0x0531, 0x058F), (0xFB13, 0xFB17))),
    Alphabet("Hebrew", _L, ((0x05D0, 0x05FF), (0xFB1D, 0xFB4F))),
    Alphabet("Arabic", _L, ((0x0620, 0x06FF), (0x0750, 0x077F))),
    Alphabet("Arabic_Presentation_Forms", _L, ((0xFB50, 0xFDFF), (0xFE70, 0xFEFF))),
    Alphabet("NKo", _L, ((0x07C0, 0x07FF),)),
    Alphabet("Lao", _L, ((0x0E80, 0x0EFF),)),
    Alphabet("Georgian", _L, ((0x10A0, 0x10FF), (0x1C90, 0x1CBF), (0x2D00, 0x2D2F))),
    Alphabet("Canadian_Syllabics", _L, ((0x1400, 0x167F), (0x18B0, 0x18FF))),
    Alphabet("Ogham", _L, ((0x1680, 0x169F),)),
    Alphabet("Tifinagh", _L, ((0x2D30, 0x2D7F),)),
    Alphabet("Lisu", _L, ((0xA4D0, 0xA4FF),)),
    Alphabet("Old_Italic", _L, ((0x10300, 0x1032F),)),
    Alphabet("IPA", _L, ((0x0250, 0x02AF),)),
    Alphabet("Phonetic_Extensions", _L, ((0x1D00, 0x1DBF),)),
    Alphabet("Fraktur", _L, ((0x1D504, 0x1D5A0), (0x212D, 0x212D), (0x210C, 0x210C), (0x2111, 0x2111),
                             (0x211C, 0x211C), (0x2128, 0x2128))),
    Alphabet("Script", _L, ((0x1D49C, 0x1D503), (0x210A, 0x210B), (0x2110, 0x2110), (0x2112, 0x2113),
                            (0x211B, 0x211B), (0x212C, 0x212C), (0x212F, 0x2131), (0x2133, 0x2134))),
    Alphabet("Double_Struck", _L, ((0x1D538, 0x1D56B), (0x1D7D8, 0x1D7E1), (0x2102, 0x2102), (0x210D, 0x210D),
                                   (0x2115, 0x2115), (0x2119, 0x211A), (0x211D, 0x211D), (0x2124, 0x2124))),
    Alphabet("Braille", _S, ((0x2800, 0x28FF),)),
    Alphabet("Arrows", _S, ((0x2190, 0x21FF),)),
    Alphabet("Supplemental_Arrows", _S, ((0x27F0, 0x27FF), (0x2900, 0x297F))),
    Alphabet("Mathematical_Operators", _S, ((0x2200, 0x22FF),)),
    Alphabet("Supplemental_Math_Operators", _S, ((0x2A00, 0x2AFF),)),
    Alphabet("Misc_Math_Symbols", _S, ((0x27C0, 0x27EF), (0x2980, 0x29FF))),
    Alphabet("Misc_Technical", _S, ((0x2300, 0x23FF),)),
    Alphabet("Letterlike_Symbols", _S, ((0x2100, 0x214F),)),
    Alphabet("Number_Forms", _S, ((0x2150, 0x218F),)),
    Alphabet("Currency", _S, ((0x20A0, 0x20CF),)),
    Alphabet("Enclosed_Alphanumerics", _S, ((0x2460, 0x24FF),)),
    Alphabet("Box_Drawing", _S, ((0x2500, 0x257F),)),
    Alphabet("Geometric_Shapes", _S, ((0x25A0, 0x25FF),)),
    Alphabet("Misc_Symbols", _S, ((0x2600, 0x26FF),)),
    Alphabet("Dingbats", _S, ((0x2700, 0x27BF),)),
    Alphabet("Misc_Symbols_Arrows", _S, ((0x2B00, 0x2BFF),)),
)

# The fixed split (about 65% / 35% of the characters, like Omniglot's 964 / 659), each half
# mixing letter scripts and symbol blocks. Related blocks stay on one side (Arabic and its
# presentation forms, IPA and the phonetic extensions, Latin and the math alphabets that
# restyle it) so that evaluation characters are not variants of training ones.
BACKGROUND_ALPHABETS: tuple[str, ...] = (
    "Latin", "Greek", "Cyrillic", "Hebrew", "Arabic", "Arabic_Presentation_Forms",
    "Canadian_Syllabics", "Lisu", "IPA", "Phonetic_Extensions", "Fraktur", "Double_Struck",
    "Braille", "Arrows", "Mathematical_Operators", "Misc_Math_Symbols", "Letterlike_Symbols",
    "Number_Forms", "Box_Drawing", "Geometric_Shapes", "Misc_Symbols", "Misc_Symbols_Arrows",
)
EVALUATION_ALPHABETS: tuple[str, ...] = (
    "Armenian", "NKo", "Lao", "Georgian", "Ogham", "Tifinagh", "Old_Italic", "Script",
    "Supplemental_Arrows", "Supplemental_Math_Operators", "Misc_Technical", "Currency",
    "Enclosed_Alphanumerics", "Dingbats",
)


def alphabet_by_name(name: str) -> Alphabet:
    """The catalogue entry called ``name``; ``KeyError`` listing the names otherwise."""
    for alphabet in ALPHABETS:
        if alphabet.name == name:
            return alphabet
    raise KeyError(f"unknown alphabet {name!r}; expected one of {[a.name for a in ALPHABETS]}")


def character_name(alphabet: str, code_point: int) -> str:
    """``"Greek/U+03B1"``: the name of one class."""
    return f"{alphabet}/U+{code_point:04X}"


def parse_character_name(name: str) -> tuple[str, int]:
    """Inverse of :func:`character_name`: ``"Greek/U+03B1" -> ("Greek", 0x3B1)``."""
    alphabet, sep, code = name.partition("/U+")
    if not sep or not alphabet:
        raise ValueError(f"character name must look like 'Greek/U+03B1', got {name!r}")
    return alphabet, int(code, 16)


def fonts_for(code_point: int) -> list[str]:
    """Usable fonts that draw ``code_point``, canonical font first."""
    return [f for f in render.usable_fonts() if code_point in render.font_charmap(f)]


@functools.lru_cache(maxsize=1)
def _covered() -> frozenset[int]:
    return frozenset().union(*(render.font_charmap(f) for f in render.usable_fonts()))


def candidate_code_points(alphabet: Alphabet) -> list[int]:
    """Code points of ``alphabet`` that some usable font maps and whose Unicode category is
    a letter, number or symbol; plain letters before ones with diacritics, then by code."""
    covered = _covered()
    out = []
    for lo, hi in alphabet.ranges:
        for cp in range(lo, hi + 1):
            if cp in covered and unicodedata.category(chr(cp))[0] in _CATEGORIES:
                out.append(cp)
    has_mark = {cp: bool(unicodedata.decomposition(chr(cp))) for cp in out}
    return sorted(set(out), key=lambda cp: (has_mark[cp], cp))


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.uint16)


def _packed(renders: np.ndarray) -> np.ndarray:
    """bool ``[M, H, W]`` -> bit-packed uint8 ``[M, ceil(H * W / 8)]``."""
    return np.packbits(renders.reshape(len(renders), -1).astype(bool), axis=1)


def _iou_packed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between bit-packed renders: ``[M, B]`` and ``[K, B]`` -> ``[M, K]`` (no BLAS,
    so it neither depends on nor fights for the machine's BLAS threads)."""
    inter = _POPCOUNT[a[:, None, :] & b[None, :, :]].sum(-1)
    union = _POPCOUNT[a[:, None, :] | b[None, :, :]].sum(-1)
    return inter / np.maximum(union, 1)


def canonical_points(code_point: int) -> np.ndarray:
    """Stroke points ``[N, 2]`` of the first usable font that draws ``code_point``
    (DejaVu Sans when it can); ``[0, 2]`` if none does."""
    for font in fonts_for(code_point):
        points = render.stroke_points(render.render_clean(font, code_point))
        if len(points) >= render.MIN_STROKE_POINTS:
            return points
    return np.zeros((0, 2), np.float32)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between binary renders. a: ``[M, H, W]`` bool, b: ``[K, H, W]`` bool -> ``[M, K]``."""
    return _iou_packed(_packed(a), _packed(b))


@dataclass
class CharacterSet:
    """The selected characters. ``code_points``/``alphabet_index`` are ``[C]``;
    ``renders`` are their canonical binarised renders ``[C, 28, 28]``."""

    alphabets: list[Alphabet]
    code_points: list[int]
    alphabet_index: list[int]
    renders: np.ndarray

    @property
    def names(self) -> list[str]:
        return [character_name(self.alphabets[a].name, cp)
                for a, cp in zip(self.alphabet_index, self.code_points)]


def select_characters(alphabets: tuple[Alphabet, ...] | None = None, progress: bool = False) -> CharacterSet:
    """Pick the characters of each alphabet: drawable, not blank, not a global duplicate.

    alphabets: catalogue entries to consider, in priority order (default ``ALPHABETS``).
    Deterministic: depends only on the fonts shipped with matplotlib.
    """
    from tqdm.auto import tqdm

    alphabets = ALPHABETS if alphabets is None else tuple(alphabets)
    kept_renders: list[np.ndarray] = []
    kept_alphabets: list[Alphabet] = []
    code_points: list[int] = []
    alphabet_index: list[int] = []
    # Renders kept so far (earlier alphabets + the current one), flattened, for IoU.
    bank = np.zeros((len(alphabets) * MAX_PER_ALPHABET, (render.IMAGE_SIZE ** 2 + 7) // 8), np.uint8)
    for alphabet in tqdm(alphabets, desc="choosing glyphs", disable=not progress, leave=False):
        chosen_cp, chosen_renders = [], []
        for cp in candidate_code_points(alphabet):
            if len(chosen_cp) >= MAX_PER_ALPHABET:
                break
            points = canonical_points(cp)
            canon = render.canonical_render(points)
            ink = int(canon.sum())
            if ink < _MIN_INK_PIXELS or ink > _MAX_INK_FRACTION * canon.size:
                continue
            packed = _packed(canon[None])
            count = len(kept_renders) + len(chosen_renders)
            if count and _iou_packed(packed, bank[:count]).max() >= DUPLICATE_IOU:
                continue
            bank[count] = packed[0]
            chosen_cp.append(cp)
            chosen_renders.append(canon)
        if len(chosen_cp) < MIN_PER_ALPHABET:
            continue  # its rows in ``bank`` are overwritten by the next alphabet
        order = np.argsort(chosen_cp, kind="stable")  # classes listed by code point
        chosen_cp = [chosen_cp[i] for i in order]
        chosen_renders = [chosen_renders[i] for i in order]
        index = len(kept_alphabets)
        kept_alphabets.append(alphabet)
        code_points.extend(chosen_cp)
        alphabet_index.extend([index] * len(chosen_cp))
        kept_renders.extend(chosen_renders)
    renders = np.stack(kept_renders) if kept_renders else np.zeros((0, render.IMAGE_SIZE, render.IMAGE_SIZE), bool)
    return CharacterSet(kept_alphabets, code_points, alphabet_index, renders)
