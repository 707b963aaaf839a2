"""The real Omniglot loader, on zips the tests fabricate in Omniglot's layout, the
downloader's error paths (simulated with fake openers and file:// URLs), and the two
real small background zips from ../shared when they are present."""
from __future__ import annotations

import hashlib
import os
import io
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from metalearn_lite.data import omniglot as om
from metalearn_lite.data.download import ChecksumError, DownloadError, download_file, part_path
from metalearn_lite.data.omniglot import (
    CorruptArchiveError,
    Omniglot,
    OmniglotFile,
    OmniglotNotFoundError,
    rotate_classes,
    vinyals_split,
)

PIL = pytest.importorskip("PIL.Image")

SHARED_OMNIGLOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"

# Fabricated sets: alphabet -> number of characters. Character g (global number, 0-based,
# background first) is drawn with ink in rows 0..g of the 28x28 image; drawer d with ink
# in columns 0..d of the last row. Images are stored at 56x56 (2x), black ink on white.
BACKGROUND = {"Alpha": 2, "Beta": 3, "Gamma": 4}
EVALUATION = {"Delta": 3, "Epsilon": 3}
NUM_DRAWERS = 20


def _png(global_char: int, drawer: int) -> bytes:
    ink = np.zeros((28, 28), dtype=bool)
    ink[: global_char + 1, :] = True
    ink[27, : drawer + 1] = True
    big = np.kron(ink, np.ones((2, 2), dtype=bool))
    img = PIL.fromarray(np.where(big, 0, 255).astype(np.uint8)).convert("1")  # black on white
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _decode_id(image: torch.Tensor) -> tuple[int, int]:
    """(global character, drawer) drawn by ``_png`` from a [1, 28, 28] ink image."""
    img = image.reshape(28, 28)
    return int((img[:24].mean(dim=1) > 0.5).sum()) - 1, int((img[27] > 0.5).sum()) - 1


def make_omniglot(dest: Path, name: str = "images_background", alphabets=None, first_char: int = 0,
                  as_zip: bool = True) -> Path:
    """Write a fake Omniglot zip (or folder) laid out like the real one; return its path."""
    alphabets = BACKGROUND if alphabets is None else alphabets
    files = {}
    g = first_char
    for alphabet, num_chars in alphabets.items():
        for c in range(num_chars):
            for d in range(NUM_DRAWERS):
                files[f"{name}/{alphabet}/character{c + 1:02d}/{g + 1:04d}_{d + 1:02d}.png"] = _png(g, d)
            g += 1
    if not as_zip:
        for rel, data in files.items():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_bytes(data)
        return dest / name
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{name}.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for rel, data in reversed(list(files.items())):  # order in the zip must not matter
            zf.writestr(rel, data)
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Every test gets its own cache directory."""
    root = tmp_path / "cache"
    monkeypatch.setenv("METALEARN_LITE_CACHE", str(root))
    return root


@pytest.fixture
def bg_zip(tmp_path):
    return make_omniglot(tmp_path / "src")


def _pin(monkeypatch, name: str, zip_path: Path, base_url: str | None = None) -> OmniglotFile:
    """Pretend ``zip_path`` is the official ``name`` zip (pinned hash and size)."""
    info = OmniglotFile(name, _sha(zip_path), zip_path.stat().st_size, 0, 0)
    monkeypatch.setitem(om.OMNIGLOT_FILES, name, info)
    if base_url is not None:
        monkeypatch.setattr(om, "OMNIGLOT_BASE_URL", base_url)
    return info


# --------------------------------------------------------------------------- loading
def test_counts_order_and_ink_convention(bg_zip):
    data = Omniglot(path=bg_zip, progress=False)
    num_chars = sum(BACKGROUND.values())
    assert data.alphabets == sorted(BACKGROUND)
    assert len(data.characters) == data.num_classes == num_chars
    assert data.characters[:2] == ["Alpha/character01", "Alpha/character02"]
    assert len(data) == len(data.targets) == num_chars * NUM_DRAWERS
    assert data.class_counts() == [NUM_DRAWERS] * num_chars
    assert [data.alphabets[a] for a in data.character_alphabet] == [c.split("/")[0] for c in data.characters]
    for index in (0, 37, len(data) - 1):
        image, target = data[index]
        assert image.shape == (1, 28, 28) and image.dtype == torch.float32
        assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
        # ink = 1 where the fake drew black, paper = 0: the identity decodes exactly
        char, drawer = _decode_id(image)
        assert char == target  # background characters are numbered like the classes
        assert data.targets[index] == target
        assert float(image[0, 26].sum()) == 0.0  # a paper row stays 0
    dense = data.class_images()
    assert dense.shape == (num_chars, NUM_DRAWERS, 1, 28, 28) and dense.dtype == torch.float32
    for c in (0, num_chars - 1):
        for d in (0, 7, NUM_DRAWERS - 1):
            assert _decode_id(dense[c, d]) == (c, d)


def test_transforms_and_folder_equals_zip(tmp_path, bg_zip):
    folder = make_omniglot(tmp_path / "extracted", as_zip=False)
    from_zip = Omniglot(path=bg_zip, progress=False)
    # the parent folder holding images_background/ is accepted too
    from_folder = Omniglot(path=folder.parent, progress=False)
    assert from_folder.source == folder
    assert from_folder.characters == from_zip.characters
    assert torch.equal(from_folder.class_images(), from_zip.class_images())
    t = Omniglot(path=bg_zip, progress=False, transform=lambda x: 1 - x, target_transform=lambda y: y + 100)
    x, y = t[5]
    assert y == from_zip[5][1] + 100
    assert torch.equal(x, 1 - from_zip[5][0])


def test_evaluation_set_and_small_argument(tmp_path):
    ev = make_omniglot(tmp_path / "src", "images_evaluation", EVALUATION)
    data = Omniglot(path=ev.parent, background=False, progress=False)  # picks images_evaluation.zip
    assert data.source == ev and data.set_name == "images_evaluation"
    assert data.alphabets == ["Delta", "Epsilon"] and data.num_classes == 6
    with pytest.raises(ValueError, match="small=... with background=True"):
        Omniglot(small=1, background=False)
    with pytest.raises(ValueError, match="got 3"):
        Omniglot(small=3)


def test_cache_next_to_managed_zip_is_reused(cache, tmp_path, monkeypatch, bg_zip):
    root = tmp_path / "root"
    root.mkdir()
    managed = root / "images_background.zip"
    managed.write_bytes(bg_zip.read_bytes())
    _pin(monkeypatch, "images_background", managed)
    first = Omniglot(root=root, progress=False)
    assert first.cache_path == root / "images_background.28x28.npz" and first.cache_path.exists()
    assert not list(root.glob("*.part")) and not list(root.glob(".*"))  # no temp files left

    def refuse(*args, **kwargs):
        raise AssertionError("decoded again although the cache is valid")

    monkeypatch.setattr(om, "decode_omniglot", refuse)
    second = Omniglot(root=root, progress=False)
    assert torch.equal(second.images, first.images)
    assert second.characters == first.characters and second.targets == first.targets


def test_cache_for_user_path_lives_in_cache_dir_and_tracks_the_file(cache, tmp_path, monkeypatch):
    src = make_omniglot(tmp_path / "src")
    data = Omniglot(path=src, progress=False)
    assert data.cache_path.parent == cache / "data" / "omniglot" / "cache"
    assert not (src.parent / "images_background.28x28.npz").exists()  # user folder untouched
    # A different zip at the same path is decoded afresh, not served from the old cache.
    make_omniglot(tmp_path / "src", alphabets={"Alpha": 1})
    changed = Omniglot(path=src, progress=False)
    assert changed.num_classes == 1 and changed.cache_path != data.cache_path


def test_corrupt_cache_is_rebuilt(tmp_path, bg_zip):
    data = Omniglot(path=bg_zip, progress=False)
    data.cache_path.write_bytes(b"not an npz")
    again = Omniglot(path=bg_zip, progress=False)
    assert torch.equal(again.images, data.images)
    with np.load(again.cache_path) as npz:  # rewritten as a valid cache
        assert npz["images"].shape == (len(data), 28, 28)


# --------------------------------------------------------------------------- Vinyals split
@pytest.fixture
def both_sets(tmp_path):
    bg = make_omniglot(tmp_path / "src", "images_background", BACKGROUND)
    ev = make_omniglot(tmp_path / "src", "images_evaluation", EVALUATION, first_char=sum(BACKGROUND.values()))
    return bg, ev


def test_vinyals_split_partitions_characters_with_rotations(both_sets):
    bg, ev = both_sets
    total = sum(BACKGROUND.values()) + sum(EVALUATION.values())
    split = vinyals_split(background_path=bg, evaluation_path=ev, num_train=10, num_val=3, seed=1, progress=False)
    train, val, test = split
    assert train.shape == (7 * 4, NUM_DRAWERS, 1, 28, 28)
    assert val.shape == (3 * 4, NUM_DRAWERS, 1, 28, 28)
    assert test.shape == ((total - 10) * 4, NUM_DRAWERS, 1, 28, 28)
    names = split.train_characters + split.val_characters + split.test_characters
    assert len(names) == len(set(names)) == total  # disjoint and complete
    # class c*4 + r is character c rotated by r*90 degrees
    everything = {}
    for s in (Omniglot(path=bg, progress=False), Omniglot(path=ev, background=False, progress=False)):
        dense = s.class_images()
        everything.update({name: dense[i] for i, name in enumerate(s.characters)})
    for tensor, chars in ((train, split.train_characters), (test, split.test_characters)):
        for c, name in enumerate(chars):
            for r in range(4):
                assert torch.equal(tensor[c * 4 + r], torch.rot90(everything[name], r, dims=(-2, -1)))
    again = vinyals_split(background_path=bg, evaluation_path=ev, num_train=10, num_val=3, seed=1, progress=False)
    assert again.train_characters == split.train_characters and torch.equal(again.test, test)
    other = vinyals_split(background_path=bg, evaluation_path=ev, num_train=10, num_val=3, seed=2, progress=False)
    assert other.train_characters != split.train_characters
    with pytest.raises(ValueError, match="with 15 characters"):
        vinyals_split(background_path=bg, evaluation_path=ev, num_train=16, progress=False)


def test_rotation_is_counter_clockwise_and_classes_differ():
    img = torch.zeros(1, 1, 1, 4, 4)
    img[..., 0, 3] = 1.0  # top-right corner
    rotated = rotate_classes(img, (0, 90, 180, 270))
    assert rotated.shape == (4, 1, 1, 4, 4)
    corners = [tuple(torch.nonzero(rotated[r, 0, 0]).tolist()[0]) for r in range(4)]
    assert corners == [(0, 3), (0, 0), (3, 0), (3, 3)]  # CCW: top-right -> top-left -> ...
    with pytest.raises(ValueError, match="multiples of 90"):
        rotate_classes(img, (45,))


# --------------------------------------------------------------------------- errors
def test_missing_data_says_where_to_get_and_put_it(cache):
    with pytest.raises(OmniglotNotFoundError) as info:
        Omniglot(progress=False)
    msg = str(info.value)
    expected_path = cache / "data" / "omniglot" / "images_background.zip"
    assert str(expected_path) in msg
    assert "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/images_background.zip" in msg
    assert "download=True" in msg and "path=" in msg
    with pytest.raises(OmniglotNotFoundError, match="does not exist"):
        Omniglot(path=cache / "nowhere.zip")


def test_no_network_says_where_to_get_and_put_it(cache):
    def offline(request, timeout=None):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    with pytest.raises(DownloadError) as info:
        Omniglot(background=False, download=True, progress=False, opener=offline)
    msg = str(info.value)
    assert "name resolution" in msg
    assert "images_evaluation.zip" in msg and "https://" in msg
    assert str(cache / "data" / "omniglot" / "images_evaluation.zip") in msg
    assert not (cache / "data" / "omniglot" / "images_evaluation.zip").exists()


def test_file_url_download_verifies_and_renames(cache, monkeypatch, bg_zip):
    _pin(monkeypatch, "images_background", bg_zip, base_url=bg_zip.parent.as_uri() + "/")
    data = Omniglot(download=True, progress=False)  # real urllib on a file:// URL
    dest = cache / "data" / "omniglot" / "images_background.zip"
    assert data.source == dest and _sha(dest) == _sha(bg_zip)
    assert not part_path(dest).exists()
    assert data.num_classes == sum(BACKGROUND.values())


class FakeResponse:
    """Serves ``data[start:]`` like an HTTP response; can fail after ``fail_after`` bytes."""

    def __init__(self, data: bytes, status: int = 200, start: int = 0, fail_after: int | None = None):
        self.status = status
        self.body = data[start:]
        self.pos = 0
        self.fail_after = fail_after
        self.headers = {"Content-Length": str(len(self.body))}
        if status == 206:
            self.headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"

    def read(self, n: int = -1) -> bytes:
        if self.fail_after is not None and self.pos >= self.fail_after:
            raise ConnectionResetError("connection reset by peer")
        end = len(self.body) if n < 0 else self.pos + n
        if self.fail_after is not None:
            end = min(end, self.fail_after)
        chunk = self.body[self.pos:end]
        self.pos += len(chunk)
        return chunk

    def close(self) -> None:
        pass


def _range_start(request) -> int:
    header = request.get_header("Range")
    return int(header.split("=")[1].rstrip("-")) if header else 0


@pytest.mark.parametrize("server_allows_range", [True, False])
def test_interrupted_download_leaves_only_part_then_resumes(cache, monkeypatch, bg_zip, server_allows_range):
    payload = bg_zip.read_bytes()
    _pin(monkeypatch, "images_background", bg_zip)
    dest = cache / "data" / "omniglot" / "images_background.zip"
    cut = len(payload) // 3

    def flaky(request, timeout=None):
        return FakeResponse(payload, fail_after=cut)

    with pytest.raises(DownloadError, match="interrupted"):
        Omniglot(download=True, progress=False, opener=flaky)
    assert not dest.exists()
    assert part_path(dest).read_bytes() == payload[:cut]
    with pytest.raises(OmniglotNotFoundError):  # a .part is never taken as complete
        Omniglot(download=False, progress=False)

    seen = []

    def resuming(request, timeout=None):
        start = _range_start(request)
        seen.append(start)
        if server_allows_range and start:
            return FakeResponse(payload, status=206, start=start)
        return FakeResponse(payload)  # ignores Range: sends everything with 200

    data = Omniglot(download=True, progress=False, opener=resuming)
    assert seen == [cut]  # asked to resume where it stopped
    assert dest.read_bytes() == payload and not part_path(dest).exists()
    assert data.num_classes == sum(BACKGROUND.values())


def test_truncated_stream_is_not_complete(cache, tmp_path, bg_zip):
    payload = bg_zip.read_bytes()

    def short(request, timeout=None):
        response = FakeResponse(payload)
        response.body = payload[:100]  # Content-Length still says the full size
        return response

    dest = tmp_path / "dl" / "x.zip"
    with pytest.raises(DownloadError, match=f"stopped at 100 of {len(payload)} bytes"):
        download_file("https://example.invalid/x.zip", dest, _sha(bg_zip), opener=short, progress=False)
    assert not dest.exists() and part_path(dest).stat().st_size == 100


def test_checksum_mismatch_removes_part_and_names_both_hashes(cache, monkeypatch, bg_zip):
    payload = bg_zip.read_bytes()
    wrong = "0" * 64
    monkeypatch.setitem(om.OMNIGLOT_FILES, "images_background",
                        OmniglotFile("images_background", wrong, len(payload), 0, 0))
    dest = cache / "data" / "omniglot" / "images_background.zip"
    with pytest.raises(ChecksumError) as info:
        Omniglot(download=True, progress=False, opener=lambda r, timeout=None: FakeResponse(payload))
    assert wrong in str(info.value) and _sha(bg_zip) in str(info.value)
    assert info.value.expected == wrong and info.value.actual == _sha(bg_zip)
    assert not dest.exists() and not part_path(dest).exists()


def test_existing_file_with_wrong_hash_is_refused(cache, bg_zip):
    root = cache / "data" / "omniglot"
    root.mkdir(parents=True)
    (root / "images_evaluation.zip").write_bytes(bg_zip.read_bytes())
    with pytest.raises(ChecksumError) as info:
        Omniglot(background=False, progress=False)
    assert om.OMNIGLOT_FILES["images_evaluation"].sha256 in str(info.value)
    assert _sha(bg_zip) in str(info.value)


def test_corrupt_zips_give_clear_errors(tmp_path, bg_zip):
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"this is not a zip file at all" * 10)
    with pytest.raises(CorruptArchiveError, match="not a readable zip"):
        Omniglot(path=garbage, progress=False)
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(bg_zip.read_bytes()[: bg_zip.stat().st_size // 2])
    with pytest.raises(CorruptArchiveError, match="not a readable zip"):
        Omniglot(path=truncated, progress=False)
    # A member whose bytes were damaged: the zip opens but its CRC check fails on read.
    damaged = tmp_path / "damaged.zip"
    raw = bytearray(bg_zip.read_bytes())
    with zipfile.ZipFile(bg_zip) as zf:
        first = zf.infolist()[0]
    offset = first.header_offset + 30 + len(first.filename.encode()) + len(first.extra) + 40
    raw[offset] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    with pytest.raises(CorruptArchiveError, match="corrupt|cannot decode"):
        Omniglot(path=damaged, progress=False)
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("readme.txt", "no images here")
    with pytest.raises(CorruptArchiveError, match="no PNG images"):
        Omniglot(path=empty, progress=False)
    flat = tmp_path / "flat.zip"
    with zipfile.ZipFile(flat, "w") as zf:
        zf.writestr("0101_01.png", _png(0, 0))
    with pytest.raises(CorruptArchiveError, match="<Alphabet>/<character>/<drawer>.png"):
        Omniglot(path=flat, progress=False)
    # Nothing was cached for any of the broken inputs.
    assert not list((tmp_path / "cache").rglob("*.npz"))


# --------------------------------------------------------------------------- real small zips
def _zip_counts(path: Path) -> tuple[set[str], dict[str, int]]:
    with zipfile.ZipFile(path) as zf:
        pngs = [n.split("/") for n in zf.namelist() if n.endswith(".png")]
    per_char: dict[str, int] = {}
    for parts in pngs:
        per_char["/".join(parts[-3:-1])] = per_char.get("/".join(parts[-3:-1]), 0) + 1
    return {p[-3] for p in pngs}, per_char


@pytest.mark.parametrize("small", [1, 2])
def test_real_small_background_zips(small):
    path = SHARED_OMNIGLOT / f"images_background_small{small}.zip"
    if not path.exists():
        pytest.skip(f"{path} not present (../shared is optional)")
    info = om.OMNIGLOT_FILES[f"images_background_small{small}"]
    assert _sha(path) == info.sha256  # the pinned hash is the real file's
    data = Omniglot(path=path, progress=False)
    alphabets, per_char = _zip_counts(path)
    assert len(data.alphabets) == 5 and set(data.alphabets) == alphabets
    assert data.num_classes == len(per_char) == info.num_characters  # 136 and 156
    assert set(per_char.values()) == {20} and data.class_counts() == [20] * data.num_classes
    dense = data.class_images()
    assert dense.shape == (info.num_characters, 20, 1, 28, 28)
    # ink = 1 on paper = 0: strokes cover a small part, the border is paper
    assert 0.02 < float(dense.mean()) < 0.3
    assert float(dense[..., 0, :].mean()) < 0.02
    assert float(dense.max()) == 1.0 and float(dense.min()) == 0.0


def test_resume_edge_cases(tmp_path, bg_zip):
    payload = bg_zip.read_bytes()
    sha = _sha(bg_zip)
    dest = tmp_path / "dl" / "x.zip"
    dest.parent.mkdir()
    # A complete .part (e.g. killed before the rename): the server answers 416, we verify it.
    part_path(dest).write_bytes(payload)

    def range_not_satisfiable(request, timeout=None):
        assert _range_start(request) == len(payload)
        raise urllib.error.HTTPError(request.full_url, 416, "Range Not Satisfiable", {}, None)

    download_file("https://example.invalid/x.zip", dest, sha, opener=range_not_satisfiable, progress=False)
    assert dest.read_bytes() == payload and not part_path(dest).exists()
    # A 206 for a range we did not ask for is not appended: the download restarts from 0.
    dest.unlink()
    part_path(dest).write_bytes(payload[:50])
    starts = []

    def wrong_range(request, timeout=None):
        starts.append(_range_start(request))
        if starts[-1]:
            return FakeResponse(payload, status=206, start=10)  # bytes 10-..., not 50-...
        return FakeResponse(payload)

    download_file("https://example.invalid/x.zip", dest, sha, opener=wrong_range, progress=False)
    assert starts == [50, 0] and dest.read_bytes() == payload and not part_path(dest).exists()
    # A .part larger than the known size is stale: dropped, downloaded from scratch.
    dest.unlink()
    part_path(dest).write_bytes(payload + b"junk")
    seen = []

    def full(request, timeout=None):
        seen.append(_range_start(request))
        return FakeResponse(payload)

    download_file("https://example.invalid/x.zip", dest, sha, size=len(payload), opener=full, progress=False)
    assert seen == [0] and dest.read_bytes() == payload


def test_root_with_extracted_folder(cache, tmp_path):
    root = tmp_path / "root"
    make_omniglot(root, as_zip=False)
    data = Omniglot(root=root, progress=False)
    assert data.source == root / "images_background"
    assert data.num_classes == sum(BACKGROUND.values())
    assert data.cache_path.parent == cache / "data" / "omniglot" / "cache"


# --------------------------------------------------------------------------- drawers, alphabets
def test_class_drawers_follow_the_file_names_and_alphabet_names(bg_zip):
    data = Omniglot(path=bg_zip, progress=False)
    drawers = data.class_drawers()
    assert drawers.shape == (data.num_classes, NUM_DRAWERS)
    assert (drawers == torch.arange(1, NUM_DRAWERS + 1)).all()     # _01 .. _20, in the dense order
    dense = data.class_images()
    for c in range(data.num_classes):                                # drawer d's image is at column d - 1
        for d in (0, 7, NUM_DRAWERS - 1):
            assert _decode_id(dense[c, d]) == (c, d)
    names = data.class_alphabet_names()
    assert names == ["Alpha"] * 2 + ["Beta"] * 3 + ["Gamma"] * 4


def test_class_drawers_rejects_names_without_a_drawer(tmp_path):
    folder = tmp_path / "odd" / "images_background" / "Alpha" / "character01"
    folder.mkdir(parents=True)
    for d in range(2):
        (folder / f"drawing{'ab'[d]}.png").write_bytes(_png(0, d))
    data = Omniglot(path=tmp_path / "odd", progress=False)
    with pytest.raises(ValueError, match="expected <image>_<drawer>.png"):
        data.class_drawers()


def test_env_folder_is_searched_after_the_default_root(cache, tmp_path, monkeypatch, bg_zip):
    shared = tmp_path / "shared-copy"
    shared.mkdir()
    (shared / "images_background.zip").write_bytes(bg_zip.read_bytes())
    _pin(monkeypatch, "images_background", bg_zip)
    monkeypatch.delenv(om.OMNIGLOT_ENV, raising=False)
    with pytest.raises(OmniglotNotFoundError):
        Omniglot(progress=False)
    monkeypatch.setenv(om.OMNIGLOT_ENV, f"{tmp_path / 'nowhere'}{os.pathsep}{shared}")
    data = Omniglot(progress=False)
    assert data.source == shared / "images_background.zip" and data.num_classes == 9
    # the default root wins when it holds the file too
    om.omniglot_root().mkdir(parents=True, exist_ok=True)
    (om.omniglot_root() / "images_background.zip").write_bytes(bg_zip.read_bytes())
    assert Omniglot(progress=False).source == om.omniglot_root() / "images_background.zip"
