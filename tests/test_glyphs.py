"""Glyphs: the offline Omniglot-shaped data set drawn from matplotlib's fonts.

Fast: generation runs on a handful of characters; the full set is timed in
``bench/glyphs_generate.py``.
"""
from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
import torch

from metalearn_lite.data import glyph_alphabets as catalogue
from metalearn_lite.data import glyph_render as render
from metalearn_lite.data import glyphs as glyphs_module
from metalearn_lite.data.glyphs import (
    GLYPHS_VERSION, Glyphs, GlyphsNotFoundError, generate_glyphs, glyphs_path, load_glyphs,
    plot_contact_sheet, save_glyphs,
)

# Background and evaluation alphabets, letters and symbols; Greek small alpha is distinct
# from Latin "a" once drawn, unlike capital Alpha.
SUBSET = [
    "Latin/U+0041", "Latin/U+0062", "Greek/U+03B1", "Cyrillic/U+0416",
    "Armenian/U+0531", "Arrows/U+2190", "Braille/U+28FF", "Dingbats/U+2708",
    "Misc_Symbols_Arrows/U+2B09",  # DejaVu Sans Mono draws this arrow as a small chevron
]
BACKGROUND_IN_SUBSET = ["Latin", "Greek", "Cyrillic", "Braille", "Arrows", "Misc_Symbols_Arrows"]  # catalogue order


@pytest.fixture(scope="module")
def subset() -> dict[str, np.ndarray]:
    return generate_glyphs(seed=0, characters=SUBSET, workers=1, progress=False)


@pytest.fixture
def cached_subset(subset, tmp_cache):
    """The subset saved where ``Glyphs(seed=0)`` looks for it."""
    save_glyphs(subset, glyphs_path(seed=0))
    return subset


# ----------------------------------------------------------------------------- fonts

def test_placeholder_and_tex_fonts_are_excluded():
    fonts = render.usable_fonts()
    assert "DejaVuSans.ttf" == fonts[0]  # the canonical font for duplicate detection
    assert len(fonts) >= 12
    for name in fonts:
        assert not name.startswith(("LastResort", "cm", "STIXSiz", "STIXNonUni")), name
    on_disk = {p.name for p in render.font_dir().glob("*.ttf")}
    for name in ("LastResortHE-Regular.ttf", "cmr10.ttf", "STIXSizOneSymReg.ttf", "STIXNonUni.ttf"):
        assert render.is_excluded_font(name)
        assert name not in fonts
        if name == "LastResortHE-Regular.ttf" and name in on_disk:
            # the reason: it claims (almost) every code point
            assert len(render._font(name).get_charmap()) > 100_000
    assert not render.is_excluded_font("DejaVuSerif-Bold.ttf")


def test_drawers_use_only_usable_fonts(subset):
    assert list(subset["fonts"]) == list(render.usable_fonts())
    assert subset["drawer_fonts"].max() < len(subset["fonts"])
    # several variants per character: the drawers differ in handwriting, not only in jitter
    assert all(len(np.unique(row)) >= 3 for row in subset["drawer_fonts"][:2])


def test_drawers_only_use_fonts_that_draw_the_same_shape(subset):
    fonts = list(subset["fonts"])
    dropped_somewhere = False
    for cp, used in zip(subset["code_points"], subset["drawer_fonts"]):
        drawing = [f for f in fonts if int(cp) in render.font_charmap(f)]
        reference = render.thick_render(catalogue.canonical_points(int(cp)))
        for font in drawing:
            this = render.thick_render(render.stroke_points(render.render_clean(font, int(cp))))
            iou = (this & reference).sum() / max((this | reference).sum(), 1)
            if fonts.index(font) in used:
                assert iou >= glyphs_module.STYLE_IOU_MIN, (hex(cp), font, iou)
            dropped_somewhere |= iou < glyphs_module.STYLE_IOU_MIN
    assert dropped_somewhere, "the subset should exercise the style check (U+2B09 in Mono)"


# ----------------------------------------------------------------------------- generation

def test_shapes_dtype_and_names(subset):
    c = len(SUBSET)
    assert subset["images"].shape == (c, 20, 28, 28) and subset["images"].dtype == np.uint8
    assert subset["drawer_fonts"].shape == (c, 20)
    assert sorted(subset["characters"]) == sorted(SUBSET)
    assert str(subset["version"]) == GLYPHS_VERSION
    alphabets = list(subset["alphabets"])
    for name, a, cp in zip(subset["characters"], subset["alphabet_index"], subset["code_points"]):
        assert catalogue.parse_character_name(str(name)) == (alphabets[a], int(cp))
    kinds = dict(zip(alphabets, subset["alphabet_kinds"]))
    assert kinds["Latin"] == "letters" and kinds["Arrows"] == "symbols"


def test_ink_is_one_on_a_zero_background(subset):
    images = subset["images"].astype(np.float32) / 255
    assert images.min() == 0.0 and images.max() == 1.0
    per_image_max = images.reshape(-1, 28 * 28).max(axis=1)
    assert (per_image_max == 1.0).all(), "every drawing has fully inked pixels"
    ink = (images > 0.5).mean(axis=(2, 3))
    assert ink.min() > 0.02 and ink.max() < 0.45, "ink is the minority: strokes on blank paper"
    border = np.concatenate([images[..., 0, :], images[..., -1, :], images[..., :, 0], images[..., :, -1]], -1)
    assert border.mean() < 0.02


def test_drawers_differ_but_stay_recognisable(subset):
    images = subset["images"].astype(np.float32) / 255
    flat = images.reshape(len(images), 20, -1)
    # no two drawers of a character are the same picture
    for c in range(len(images)):
        diffs = np.abs(flat[c, :, None] - flat[c, None, :]).mean(-1)
        assert diffs[~np.eye(20, dtype=bool)].min() > 0.005
    # ...yet a drawing is nearer (on average) to its own character's mean than to others'
    blurred = torch.nn.functional.avg_pool2d(torch.from_numpy(images).reshape(-1, 1, 28, 28), 5, 1, 2)
    blurred = blurred.reshape(len(images), 20, -1)
    means = blurred.mean(1)
    dist = torch.cdist(blurred.reshape(-1, 28 * 28), means)          # [C*20, C]
    labels = torch.arange(len(images)).repeat_interleave(20)
    accuracy = (dist.argmin(1) == labels).float().mean().item()
    assert accuracy > 0.8, accuracy


def test_same_seed_same_bits_other_seed_other_images(subset):
    again = generate_glyphs(seed=0, characters=SUBSET[:3], workers=1, progress=False)
    n = 3
    order = [list(subset["characters"]).index(name) for name in again["characters"]]
    assert np.array_equal(again["images"], subset["images"][order][:n])
    assert np.array_equal(again["drawer_fonts"], subset["drawer_fonts"][order][:n])
    other = generate_glyphs(seed=1, characters=SUBSET[:3], workers=1, progress=False)
    assert not np.array_equal(other["images"], again["images"])


def test_worker_processes_give_the_same_bits(subset):
    parallel = generate_glyphs(seed=0, characters=SUBSET, workers=2, progress=False)
    assert np.array_equal(parallel["images"], subset["images"])


def test_forked_workers_do_not_share_the_parents_open_fonts():
    # Regression: fonts the parent had opened (the selection renders every candidate) were
    # inherited by forked workers with a shared file offset; two workers reading glyph data
    # at once then got each other's bytes: wrong or blank glyphs, differing run to run.
    names = [f"Latin/U+{cp:04X}" for cp in range(0x41, 0x5B)] + \
            [f"Greek/U+{cp:04X}" for cp in range(0x3B1, 0x3CA)] + \
            [f"Fraktur/U+{cp:04X}" for cp in (0x1D504, 0x1D505, 0x1D507, 0x1D508, 0x1D509, 0x1D50A,
                                               0x1D50D, 0x1D50E, 0x1D50F, 0x1D510, 0x1D511, 0x1D512)]
    for name in names:  # open (and read from) every font in this parent process first
        code_point = catalogue.parse_character_name(name)[1]
        for font in catalogue.fonts_for(code_point):
            render.render_clean(font, code_point)
    serial = generate_glyphs(seed=0, characters=names, num_drawers=6, workers=1, progress=False)
    for _ in range(2):
        parallel = generate_glyphs(seed=0, characters=names, num_drawers=6, workers=2, progress=False)
        assert np.array_equal(parallel["images"], serial["images"])
        assert np.array_equal(parallel["drawer_fonts"], serial["drawer_fonts"])


def test_bad_character_names_are_rejected():
    with pytest.raises(ValueError, match="Greek/U\\+03B1"):
        generate_glyphs(characters=["alpha"], progress=False)
    with pytest.raises(KeyError, match="unknown alphabet"):
        generate_glyphs(characters=["Klingon/U+0041"], progress=False)


# ----------------------------------------------------------------------------- selection

def test_selection_has_no_near_duplicates_and_drops_cross_script_twins():
    alphabets = tuple(catalogue.alphabet_by_name(n) for n in ("Latin", "Greek", "Cyrillic"))
    chosen = catalogue.select_characters(alphabets)
    # recompute the renders independently of the selection's own bookkeeping
    renders = np.stack([render.canonical_render(catalogue.canonical_points(cp)) for cp in chosen.code_points])
    iou = catalogue.iou_matrix(renders, renders)
    np.fill_diagonal(iou, 0)
    assert iou.max() < catalogue.DUPLICATE_IOU
    assert 0x41 in chosen.code_points                        # Latin A kept...
    assert 0x391 not in chosen.code_points                   # ...Greek Alpha and
    assert 0x410 not in chosen.code_points                   # Cyrillic A are the same letter
    counts = np.bincount(chosen.alphabet_index)
    assert counts.max() <= catalogue.MAX_PER_ALPHABET and counts.min() >= catalogue.MIN_PER_ALPHABET
    assert renders.sum(axis=(1, 2)).min() >= 12, "no blank renders"


def test_iou_matrix_matches_the_definition():
    rng = np.random.default_rng(0)
    a, b = rng.random((4, 28, 28)) > 0.7, rng.random((3, 28, 28)) > 0.6
    expected = np.array([[(x & y).sum() / (x | y).sum() for y in b] for x in a])
    assert np.allclose(catalogue.iou_matrix(a, b), expected)


def test_split_is_disjoint_complete_and_pinned():
    background, evaluation = catalogue.BACKGROUND_ALPHABETS, catalogue.EVALUATION_ALPHABETS
    names = [a.name for a in catalogue.ALPHABETS]
    assert len(set(names)) == len(names)
    assert not set(background) & set(evaluation)
    assert set(background) | set(evaluation) == set(names)
    assert len(set(background)) == len(background) and len(set(evaluation)) == len(evaluation)
    assert {catalogue.alphabet_by_name(n).kind for n in evaluation} == {"letters", "symbols"}
    # Changing the split changes every published number: do it on purpose, with a new version.
    digest = hashlib.sha256(("|".join(background) + "#" + "|".join(evaluation)).encode()).hexdigest()
    assert digest == "07f01a3c3bf9d494b2a850c598f718c19d5941ef96b32f729d570d5b03b6a9cb"


# ----------------------------------------------------------------------------- cache and data set

def test_cache_round_trip_and_dataset(cached_subset):
    path = glyphs_path(seed=0)
    assert path.name == f"{GLYPHS_VERSION}-seed0.npz" and path.parent.parent == (
        __import__("metalearn_lite.paths").paths.cache_dir())
    loaded = load_glyphs(path)
    for key, value in cached_subset.items():
        assert np.array_equal(loaded[key], value), key

    train = Glyphs(background=True, generate=False, progress=False)
    test = Glyphs(background=False, generate=False, progress=False)
    assert train.alphabets == BACKGROUND_IN_SUBSET
    assert set(test.alphabets) == {"Armenian", "Dingbats"}
    assert not set(train.characters) & set(test.characters)
    assert sorted(train.characters + test.characters) == sorted(SUBSET)
    assert len(train) == 20 * len(train.characters) == len(train.targets)

    dense = train.class_images()
    assert dense.shape == (len(train.characters), 20, 1, 28, 28) and dense.dtype == torch.float32
    names = list(cached_subset["characters"])
    for c, name in enumerate(train.characters):
        expected = torch.from_numpy(cached_subset["images"][names.index(name)]).float() / 255
        assert torch.equal(dense[c, :, 0], expected)
    image, target = train[47]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32
    assert target == train.targets[47] == 47 // 20 and isinstance(target, int)
    assert torch.equal(image, dense[2, 7])
    assert 0.0 <= image.min() and image.max() <= 1.0
    with pytest.raises(IndexError):
        train[len(train)]


def test_transforms_are_applied(cached_subset):
    data = Glyphs(background=True, generate=False, transform=lambda x: 1 - x,
                  target_transform=lambda y: y + 100)
    image, target = data[0]
    assert target == 100
    assert torch.equal(image, 1 - data.class_images()[0, 0])


def test_missing_cache_without_generate_says_how_to_make_it(tmp_cache):
    with pytest.raises(GlyphsNotFoundError, match="metalearn data glyphs"):
        Glyphs(generate=False)
    assert not list(tmp_cache.rglob("*.npz"))


def test_stale_version_is_not_loaded(subset, tmp_cache):
    stale = dict(subset, version=np.array("glyphs-v0"))
    save_glyphs(stale, glyphs_path(seed=0))
    with pytest.raises(ValueError, match="expected 'glyphs-v2'"):
        load_glyphs(glyphs_path(seed=0))
    with pytest.raises(GlyphsNotFoundError, match="stale"):
        Glyphs(generate=False)


def test_crash_mid_write_leaves_no_loadable_file(subset, tmp_cache, monkeypatch):
    path = glyphs_path(seed=0)

    def crashing_savez(handle, **arrays):
        handle.write(b"PK\x03\x04 half an npz")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(glyphs_module.np, "savez_compressed", crashing_savez)
    with pytest.raises(KeyboardInterrupt):
        save_glyphs(subset, path)
    assert not path.exists()
    assert not list(path.parent.iterdir()), "the temporary file is cleaned up"
    with pytest.raises(GlyphsNotFoundError):
        Glyphs(generate=False)
    monkeypatch.undo()
    # a good file survives a later crashed rewrite
    save_glyphs(subset, path)
    monkeypatch.setattr(glyphs_module.np, "savez_compressed", crashing_savez)
    with pytest.raises(KeyboardInterrupt):
        save_glyphs(dict(subset, seed=np.array(99)), path)
    assert int(load_glyphs(path)["seed"]) == 0
    assert os.listdir(path.parent) == [path.name]


def test_corrupt_file_is_reported(tmp_cache):
    path = glyphs_path(seed=0)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable Glyphs file"):
        load_glyphs(path)


# ----------------------------------------------------------------------------- plotting

def test_contact_sheet_from_dataset_and_arrays(cached_subset):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = Glyphs(background=True, generate=False)
    fig = plot_contact_sheet(data, num_classes=3, num_drawers=4, title="t")
    ax = fig.axes[0]
    sheet = ax.images[0].get_array()
    assert sheet.shape == (3 * 30, 4 * 30)
    assert [t.get_text() for t in ax.get_yticklabels()][0] == data.characters[0]
    assert ax.get_title() == "t"
    plt.close(fig)
    fig = plot_contact_sheet(cached_subset["images"], num_classes=100, num_drawers=100)
    assert fig.axes[0].images[0].get_array().shape == (len(SUBSET) * 30, 20 * 30)
    plt.close(fig)
    with pytest.raises(ValueError, match=r"\[C, D, H, W\]"):
        plot_contact_sheet(np.zeros((5, 28, 28)))


def test_generate_true_creates_the_cache_once(tmp_cache, monkeypatch):
    small = catalogue.select_characters(tuple(catalogue.alphabet_by_name(n) for n in ("Ogham", "Currency")))
    monkeypatch.setattr(catalogue, "select_characters", lambda progress=False: small)
    data = Glyphs(background=False, progress=False)          # both are evaluation alphabets
    assert data.cache_path == glyphs_path(seed=0) and data.cache_path.is_file()
    assert data.alphabets == ["Ogham", "Currency"] and data.alphabet_kinds == ["letters", "symbols"]
    assert data.characters == small.names
    assert len(data) == 20 * len(small.names)

    def no_generation(*args, **kwargs):
        raise AssertionError("a cached set must be loaded, not generated again")

    monkeypatch.setattr(glyphs_module, "generate_glyphs", no_generation)
    again = Glyphs(background=False, progress=False)
    assert torch.equal(again.class_images(), data.class_images())
    assert Glyphs(background=True, progress=False).characters == []


def test_stale_cache_is_regenerated_with_a_warning(subset, tmp_cache, monkeypatch):
    save_glyphs(dict(subset, version=np.array("glyphs-v0")), glyphs_path(seed=0))
    monkeypatch.setattr(glyphs_module, "generate_glyphs", lambda seed, progress, style: subset)
    with pytest.warns(UserWarning, match="regenerating Glyphs"):
        data = Glyphs(progress=False)
    assert str(load_glyphs(data.cache_path)["version"]) == GLYPHS_VERSION


def test_a_second_loader_waits_for_the_first_generator_and_loads_its_file(subset, tmp_cache, monkeypatch):
    """Two processes asking for a missing set (two notebooks, two test workers): the second
    waits on the cache's lock file and loads what the first wrote, instead of generating too."""
    import threading

    from filelock import FileLock

    path = glyphs_path(seed=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    holding, release = threading.Event(), threading.Event()

    def first_generator():   # holds the lock while "generating", then writes the file
        with FileLock(f"{path}.lock"):
            holding.set()
            release.wait(10)
            save_glyphs(subset, path)

    def no_generation(*args, **kwargs):
        raise AssertionError("the second loader generated instead of waiting for the first")

    monkeypatch.setattr(glyphs_module, "generate_glyphs", no_generation)
    worker = threading.Thread(target=first_generator)
    worker.start()
    try:
        assert holding.wait(10)
        timer = threading.Timer(0.5, release.set)   # the first one finishes while we wait
        timer.start()
        data = Glyphs(progress=False)
    finally:
        release.set()
        worker.join(10)
    assert data.characters and str(load_glyphs(path)["version"]) == GLYPHS_VERSION


# ----------------------------------------------------------------------------- styles (generator studies)

def test_the_default_style_draws_the_published_bits(subset):
    explicit = generate_glyphs(seed=0, characters=SUBSET[:3], workers=1, progress=False,
                               style=render.GlyphStyle(pen_radius=(0.7, 1.35), elastic=(0.025, 0.06)))
    order = [list(subset["characters"]).index(name) for name in explicit["characters"]]
    assert np.array_equal(explicit["images"], subset["images"][order])
    assert str(explicit["style"]) == str(subset["style"]) == "" == render.DEFAULT_STYLE.key
    assert glyphs_path(seed=0, style=render.DEFAULT_STYLE) == glyphs_path(seed=0)


def test_a_thinner_pen_inks_less_and_is_cached_as_its_own_file(subset, tmp_cache, monkeypatch):
    thin = render.GlyphStyle(pen_radius=(0.35, 0.675))
    assert thin.key == "pen0.35-0.675"
    drawn = generate_glyphs(seed=0, characters=SUBSET, workers=1, progress=False, style=thin)
    assert str(drawn["style"]) == thin.key
    ink = {name: (a["images"].astype(np.float32) / 255).mean() for name, a in (("thin", drawn), ("default", subset))}
    assert ink["thin"] < 0.75 * ink["default"], ink
    # the same characters and fonts: only the pen changed (same RNG draws)
    assert np.array_equal(drawn["drawer_fonts"], subset["drawer_fonts"])
    path = glyphs_path(seed=0, style=thin)
    assert path.name == f"{GLYPHS_VERSION}-seed0-pen0.35-0.675.npz" and path != glyphs_path(seed=0)
    save_glyphs(subset, glyphs_path(seed=0))          # the default set is there; the style's is not
    calls = []
    monkeypatch.setattr(glyphs_module, "generate_glyphs",
                        lambda seed, progress, style: calls.append(style) or drawn)
    data = Glyphs(progress=False, style=thin)
    assert calls == [thin] and data.cache_path == path and path.is_file()
    assert "style pen0.35-0.675" in repr(data)
    with pytest.raises(ValueError, match="style ''.*expected 'pen0.35-0.675'"):
        load_glyphs(glyphs_path(seed=0), style=thin)    # a default file never passes as another style
    assert torch.equal(Glyphs(progress=False, style=thin).class_images(), data.class_images()) and len(calls) == 1


@pytest.mark.parametrize("kwargs, match", [
    ({"pen_radius": (1.0, 0.5)}, "pen_radius must be a range"),
    ({"elastic": (-0.1, 0.1)}, "elastic must be a range"),
    ({"rotation_std": -1.0}, "rotation_std must be >= 0"),
])
def test_bad_styles_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        render.GlyphStyle(**kwargs)
    with pytest.raises(TypeError, match="GlyphStyle"):
        generate_glyphs(characters=SUBSET[:1], progress=False, style={"pen_radius": (0.5, 1.0)})


def test_feeds_the_episode_sampler(cached_subset):
    from metalearn_lite.data.episodes import EpisodeSampler

    data = Glyphs(background=True, generate=False)
    episode = EpisodeSampler(data, num_ways=3, num_shots=2, num_queries=5, seed=0).sample()
    assert episode.support_x.shape == (6, 1, 28, 28) and episode.query_x.shape == (15, 1, 28, 28)
    assert episode.support_x.dtype == torch.float32 and episode.support_x.max() <= 1.0
