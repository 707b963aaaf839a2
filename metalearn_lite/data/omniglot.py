"""The real Omniglot data set (Lake et al., 2015), 28x28, ink = 1 (chapter 02).

Omniglot has 1,623 handwritten characters from 50 alphabets, each drawn once by 20
people. The public release (https://github.com/brendenlake/omniglot, ``python/``)
ships four zips of 105x105 black-on-white PNGs::

    images_background.zip         30 alphabets, 964 characters  (the "background" set)
    images_evaluation.zip         20 alphabets, 659 characters  (the "evaluation" set)
    images_background_small1.zip   5 alphabets, 136 characters  (a "minimal" background set)
    images_background_small2.zip   5 alphabets, 156 characters  (another one)

laid out as ``images_background/<Alphabet>/character01/0101_01.png`` (``_01`` .. ``_20``
are the drawers). Two splits are used in the literature:

- the *Lake split*: background alphabets for training, evaluation alphabets for test,
  i.e. ``Omniglot(background=True)`` and ``Omniglot(background=False)``;
- the *Vinyals split* (Vinyals et al., 2016): 1,200 of all 1,623 characters for
  training and the other 423 for test, each rotated by 0/90/180/270 degrees to make
  new classes: :func:`vinyals_split`.

Images are resized to 28x28 by area averaging (the ink coverage of each pixel) and
inverted so that ink = 1 and paper = 0, floats in ``[0, 1]``. The decoded images are
cached as a compressed ``.npz`` next to the zip in the cache (for a zip or folder you
pass with ``path=``, under ``metalearn_lite.paths.data_dir()/omniglot/cache``: your
folders are never written to), so a second load takes well under a second.

Downloads go to ``data_dir()/omniglot/<name>.zip`` with pinned SHA-256 checksums (see
:mod:`metalearn_lite.data.download`). The pins for the two full zips come from
TensorFlow Datasets' ``url_checksums/omniglot.txt``, which also lists the two small
zips with the same hashes as the files we verified by hand.
"""
from __future__ import annotations

import hashlib
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from ..atomic import atomic_writer, sha256_file
from ..paths import data_dir
from .download import ChecksumError, DownloadError, download_file, verify_file

__all__ = [
    "Omniglot",
    "VinyalsSplit",
    "vinyals_split",
    "rotate_classes",
    "OmniglotFile",
    "OMNIGLOT_FILES",
    "OMNIGLOT_BASE_URL",
    "OmniglotNotFoundError",
    "CorruptArchiveError",
    "ChecksumError",
    "DownloadError",
    "omniglot_root",
    "omniglot_search_roots",
    "OMNIGLOT_ENV",
    "fetch_omniglot",
    "decode_omniglot",
]

IMAGE_SIZE = 28
CACHE_FORMAT = 1  # bump when the decoding changes, so stale caches are rebuilt
OMNIGLOT_BASE_URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"


@dataclass(frozen=True)
class OmniglotFile:
    """One zip of the public release, with its pinned SHA-256 and size in bytes."""

    name: str
    sha256: str
    size: int
    num_alphabets: int
    num_characters: int

    @property
    def url(self) -> str:
        return OMNIGLOT_BASE_URL + self.name + ".zip"

    @property
    def filename(self) -> str:
        return self.name + ".zip"


OMNIGLOT_FILES: dict[str, OmniglotFile] = {
    f.name: f
    for f in (
        OmniglotFile("images_background", "ad41ab679c8b5d90b271ef46be6987cc81211774a695c29dcc5367b2b26ee640", 9464212, 30, 964),
        OmniglotFile("images_evaluation", "1f61a8f3366785b057fc117d9228e78a16e3d976c8953b2a10fcc74cf0609cee", 6462886, 20, 659),
        OmniglotFile("images_background_small1", "f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4", 1319022, 5, 136),
        OmniglotFile("images_background_small2", "3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f", 1580917, 5, 156),
    )
}


class OmniglotNotFoundError(FileNotFoundError):
    """The Omniglot files are not where they were looked for (the message says how to get them)."""


class CorruptArchiveError(ValueError):
    """A zip or folder is unreadable or not laid out like Omniglot."""


def omniglot_root() -> Path:
    """Default folder for the Omniglot zips: ``data_dir()/omniglot``."""
    return data_dir() / "omniglot"


OMNIGLOT_ENV = "METALEARN_LITE_OMNIGLOT"


def omniglot_search_roots() -> list[Path]:
    """Where a load without ``root`` looks, in order: ``data_dir()/omniglot``, then each folder
    in ``$METALEARN_LITE_OMNIGLOT`` (``os.pathsep``-separated; e.g. a shared, read-only copy
    of the zips). Downloads always go to the first."""
    extra = [Path(p).expanduser() for p in os.environ.get(OMNIGLOT_ENV, "").split(os.pathsep) if p.strip()]
    return [omniglot_root(), *extra]


def _set_name(background: bool, small: int | bool | None) -> str:
    if small in (None, False):
        return "images_background" if background else "images_evaluation"
    if small is True:
        small = 1
    if small not in (1, 2):
        raise ValueError(f"small must be None, 1 or 2 (images_background_small1/2), got {small!r}")
    if not background:
        raise ValueError("the small Omniglot sets are background sets: use small=... with background=True")
    return f"images_background_small{small}"


def _how_to_get(info: OmniglotFile, root: Path) -> str:
    return (
        f"Get it with Omniglot(..., download=True) or `metalearn data omniglot --download`, "
        f"or download {info.url} (sha256 {info.sha256}) yourself and put it at "
        f"{root / info.filename}, or pass path='/where/it/is/{info.filename}' "
        f"(a zip or its extracted folder)."
    )


def fetch_omniglot(name: str = "images_background", root: str | os.PathLike | None = None,
                   download: bool = False, progress: bool = True, opener=None) -> Path:
    """Locate (and with ``download=True`` fetch) one Omniglot zip under ``root``.

    Args:
        name: one of :data:`OMNIGLOT_FILES` (e.g. ``"images_evaluation"``).
        root: folder holding the zips; by default ``data_dir()/omniglot``, or else the first
            folder of ``$METALEARN_LITE_OMNIGLOT`` that has it (:func:`omniglot_search_roots`).
        download: fetch the zip if absent (restartable, checksum-verified, atomic).
        opener: passed to :func:`~metalearn_lite.data.download.download_file` (tests).

    Returns:
        The verified zip, or ``root/<name>/`` if only an extracted folder is there.

    Raises:
        OmniglotNotFoundError: absent and ``download=False``; says where to put it.
        DownloadError: the download failed; says where to get it by hand.
        ChecksumError: the file's hash is not the pinned one (names both).
    """
    if name not in OMNIGLOT_FILES:
        raise ValueError(f"unknown Omniglot file {name!r}; expected one of {sorted(OMNIGLOT_FILES)}")
    info = OMNIGLOT_FILES[name]
    if root is None:   # the default folder, then $METALEARN_LITE_OMNIGLOT's, before any download
        found = next((r for r in omniglot_search_roots()[1:]
                      if (r / info.filename).exists() or (r / name).is_dir()), None)
        if found is not None and not (omniglot_root() / info.filename).exists() \
                and not (omniglot_root() / name).is_dir():
            root = found
    root = Path(root).expanduser() if root is not None else omniglot_root()
    zip_path = root / info.filename
    if zip_path.exists():
        try:
            verify_file(zip_path, info.sha256)
        except ChecksumError as exc:
            raise ChecksumError(
                f"{zip_path} is not the official {info.filename}: expected sha256 "
                f"{exc.expected}, got {exc.actual}. Delete it and download again, or pass "
                f"path={str(zip_path)!r} to read it anyway.",
                expected=exc.expected, actual=exc.actual,
            ) from None
        return zip_path
    if (root / name).is_dir():
        return root / name
    if not download:
        raise OmniglotNotFoundError(f"Omniglot {info.filename} not found in {root}. {_how_to_get(info, root)}")
    try:
        return download_file(info.url, zip_path, info.sha256, size=info.size,
                             opener=opener, progress=progress)
    except DownloadError as exc:
        raise DownloadError(f"{exc} {_how_to_get(info, root)}") from exc


# --------------------------------------------------------------------------- decoding
def _decode_png(data: bytes, where: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            gray = img.convert("L").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BOX)
            return 255 - np.asarray(gray, dtype=np.uint8)  # black ink on white -> ink = 255
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise CorruptArchiveError(f"cannot decode the PNG image {where}: {exc}") from exc


def _split_member(name: str, source: Path) -> tuple[str, str, str]:
    parts = [p for p in name.replace("\\", "/").split("/") if p]
    if len(parts) < 3:
        raise CorruptArchiveError(
            f"{source}: expected images at <Alphabet>/<character>/<drawer>.png (e.g. "
            f"images_background/Latin/character01/0683_01.png), got {name!r}"
        )
    return parts[-3], parts[-2], parts[-1]


def _iter_pngs(source: Path) -> tuple[list[tuple[str, str, str]], Callable[[int], bytes]]:
    """The (alphabet, character, file) of every PNG in ``source`` and a reader by index."""
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() == ".png" and p.is_file())
        keys = [_split_member(str(p.relative_to(source)), source) for p in files]
        return keys, lambda i: files[i].read_bytes()
    try:
        archive = zipfile.ZipFile(source)
        members = [m for m in archive.namelist()
                   if m.lower().endswith(".png") and not m.startswith("__MACOSX")]
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise CorruptArchiveError(
            f"{source} is not a readable zip ({type(exc).__name__}: {exc}); delete it and "
            f"download it again"
        ) from exc
    keys = [_split_member(m, source) for m in members]

    def read(i: int) -> bytes:
        try:
            return archive.read(members[i])
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
            raise CorruptArchiveError(
                f"{source} is corrupt: cannot read {members[i]} ({type(exc).__name__}: {exc}); "
                f"delete it and download it again"
            ) from exc

    return keys, read


def decode_omniglot(source: str | os.PathLike, progress: bool = True) -> dict[str, np.ndarray]:
    """Decode every PNG of an Omniglot zip or folder to 28x28 ink images.

    Args:
        source: a zip (``images_background.zip``) or a folder of ``<Alphabet>/<character>/*.png``.

    Returns:
        ``images``: uint8 ``[num_images, 28, 28]`` (ink = 255), ordered by class then drawer;
        ``targets``: int64 ``[num_images]`` class index; ``alphabets``: str ``[num_alphabets]``;
        ``characters``: str ``[num_classes]`` as ``"Alphabet/characterNN"``;
        ``character_alphabet``: int64 ``[num_classes]`` alphabet index of each class;
        ``files``: str ``[num_images]`` the PNG file names.

    Raises:
        CorruptArchiveError: unreadable zip, undecodable PNG, or no PNGs in Omniglot's layout.
    """
    source = Path(source)
    keys, read = _iter_pngs(source)
    if not keys:
        raise CorruptArchiveError(
            f"no PNG images found in {source}; expected Omniglot's layout "
            f"images_background/<Alphabet>/character01/0101_01.png"
        )
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    alphabets = sorted({k[0] for k in keys})
    characters = sorted({f"{k[0]}/{k[1]}" for k in keys})
    char_index = {c: i for i, c in enumerate(characters)}
    alpha_index = {a: i for i, a in enumerate(alphabets)}
    images = np.empty((len(keys), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    targets = np.empty(len(keys), dtype=np.int64)
    from tqdm.auto import tqdm

    for row, i in enumerate(tqdm(order, desc=f"decoding {source.name}", disable=not progress, leave=False)):
        alphabet, character, filename = keys[i]
        images[row] = _decode_png(read(i), f"{source.name}:{alphabet}/{character}/{filename}")
        targets[row] = char_index[f"{alphabet}/{character}"]
    return {
        "images": images,
        "targets": targets,
        "alphabets": np.array(alphabets, dtype=str),
        "characters": np.array(characters, dtype=str),
        "character_alphabet": np.array([alpha_index[c.split("/")[0]] for c in characters], dtype=np.int64),
        "files": np.array([keys[i][2] for i in order], dtype=str),
    }


# --------------------------------------------------------------------------- cache
def _fingerprint(source: Path) -> str:
    """SHA-256 of a zip, or of a folder's PNG listing (paths, sizes, mtimes)."""
    if not source.is_dir():
        return sha256_file(source)
    digest = hashlib.sha256()
    for p in sorted(source.rglob("*.png")):
        st = p.stat()
        digest.update(f"{p.relative_to(source)}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _writable(folder: Path) -> bool:
    """Whether we may write in ``folder``: a folder without any write bit counts as
    read-only even for root (who could write anyway), e.g. a shared data folder."""
    try:
        return os.access(folder, os.W_OK) and bool(folder.stat().st_mode & 0o222)
    except OSError:
        return False


def _cache_candidates(source: Path, fingerprint: str, next_to_source: bool) -> list[Path]:
    """Where the decoded ``.npz`` may live, best first.

    Next to a zip the loader manages (``root/<name>.28x28.npz``); for a file or folder the
    user passed (``path=``), only under ``data_dir()/omniglot/cache``: we never write
    into the user's folders.
    """
    name = source.name[:-4] if source.suffix.lower() == ".zip" else source.name
    fallback = omniglot_root() / "cache" / f"{name}-{fingerprint[:16]}.{IMAGE_SIZE}x{IMAGE_SIZE}.npz"
    if source.is_dir() or not next_to_source or not _writable(source.parent):
        return [fallback]
    return [source.with_name(f"{name}.{IMAGE_SIZE}x{IMAGE_SIZE}.npz"), fallback]


def _read_cache(path: Path, fingerprint: str) -> dict[str, np.ndarray] | None:
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            if int(npz["format"]) != CACHE_FORMAT or str(npz["fingerprint"]) != fingerprint:
                return None
            return {k: npz[k] for k in npz.files if k not in ("format", "fingerprint")}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # unreadable cache: decode again and overwrite it


def _write_cache(candidates: list[Path], arrays: dict[str, np.ndarray], fingerprint: str) -> Path | None:
    for path in candidates:
        try:
            with atomic_writer(path) as handle:
                np.savez_compressed(handle, format=np.int64(CACHE_FORMAT),
                                    fingerprint=np.array(fingerprint), **arrays)
            return path
        except OSError:  # read-only folder (e.g. a shared data dir): try the next place
            continue
    return None


def _load_decoded(source: Path, progress: bool,
                  next_to_source: bool) -> tuple[dict[str, np.ndarray], Path | None]:
    fingerprint = _fingerprint(source)
    candidates = _cache_candidates(source, fingerprint, next_to_source)
    for path in candidates:
        arrays = _read_cache(path, fingerprint)
        if arrays is not None:
            return arrays, path
    arrays = decode_omniglot(source, progress=progress)
    return arrays, _write_cache(candidates, arrays, fingerprint)


def _resolve_path(path: Path, set_name: str) -> Path:
    path = path.expanduser()
    if not path.exists():
        info = OMNIGLOT_FILES[set_name]
        raise OmniglotNotFoundError(
            f"{path} does not exist. Pass the path of an Omniglot zip (e.g. {info.filename}, "
            f"from {info.url}) or of its extracted folder."
        )
    if path.is_dir():
        if (path / set_name).is_dir():
            return path / set_name
        if (path / f"{set_name}.zip").is_file():
            return path / f"{set_name}.zip"
    return path


# --------------------------------------------------------------------------- data set
class Omniglot(torch.utils.data.Dataset):
    """Omniglot characters as a map-style data set, shaped like torchvision's ``Omniglot``.

    Args:
        root: folder holding the zips (default ``data_dir()/omniglot``); the zip is
            ``root/images_background.zip`` (or an extracted ``root/images_background/``).
        background: the background set (30 alphabets) if True, else evaluation (20).
        download: download the zip into ``root`` if absent (pinned SHA-256).
        path: read this zip or extracted folder instead (no checksum pin: your file).
        transform: applied to each image ``[1, 28, 28]`` in ``__getitem__``.
        target_transform: applied to each class index in ``__getitem__``.
        small: 1 or 2 for ``images_background_small1/2`` (5 alphabets each).
        progress: show ``tqdm.auto`` bars when downloading/decoding.

    Items: ``(image, target)`` with ``image`` float32 ``[1, 28, 28]`` in ``[0, 1]``, ink = 1,
    and ``target`` the class (character) index in ``0..num_classes-1``.

    Attributes:
        alphabets: sorted alphabet names. characters: ``"Alphabet/characterNN"`` per class.
        targets: class index per image. character_alphabet: alphabet index per class.
        images: uint8 ``[num_images, 28, 28]`` (ink = 255). source: the file read.
        cache_path: the ``.npz`` holding the decoded images (None if it could not be written);
            next to the zip under ``root``, or in ``data_dir()/omniglot/cache`` for ``path=``.
    """

    def __init__(self, root: str | os.PathLike | None = None, background: bool = True,
                 download: bool = False, path: str | os.PathLike | None = None,
                 transform: Callable | None = None, target_transform: Callable | None = None,
                 small: int | None = None, progress: bool = True, opener=None) -> None:
        self.set_name = _set_name(background, small)
        self.background = background
        self.transform = transform
        self.target_transform = target_transform
        if path is not None:
            self.source = _resolve_path(Path(path), self.set_name)
        else:
            self.source = fetch_omniglot(self.set_name, root=root, download=download,
                                         progress=progress, opener=opener)
        arrays, self.cache_path = _load_decoded(self.source, progress, next_to_source=path is None)
        self.images = torch.from_numpy(np.ascontiguousarray(arrays["images"]))
        self.alphabets: list[str] = [str(a) for a in arrays["alphabets"]]
        self.characters: list[str] = [str(c) for c in arrays["characters"]]
        self.character_alphabet: list[int] = arrays["character_alphabet"].tolist()
        self.targets: list[int] = arrays["targets"].tolist()
        self.files: list[str] = [str(f) for f in arrays["files"]]

    # ------------------------------------------------------------------ map-style
    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        """``(image [1, 28, 28] float32, ink = 1; class index)``, transforms applied."""
        image = self.images[index].to(torch.float32).div_(255.0).unsqueeze(0)
        target = self.targets[index]
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    @property
    def num_classes(self) -> int:
        return len(self.characters)

    def class_counts(self) -> list[int]:
        """Images per class ``[num_classes]`` (20 drawers in the official release)."""
        return np.bincount(np.asarray(self.targets), minlength=self.num_classes).tolist()

    def class_images(self) -> Tensor:
        """All images grouped by class: float32 ``[num_classes, num_drawers, 1, 28, 28]``, ink = 1.

        This dense form is what :class:`~metalearn_lite.data.episodes.EpisodeSampler` uses.
        Transforms are not applied. Raises ``ValueError`` if classes differ in size.
        """
        counts = set(self.class_counts())
        if len(counts) != 1:
            raise ValueError(
                f"class_images() needs the same number of images in every class, got "
                f"counts {sorted(counts)} in {self.source}"
            )
        per_class = counts.pop()
        dense = self.images.reshape(self.num_classes, per_class, 1, IMAGE_SIZE, IMAGE_SIZE)
        return dense.to(torch.float32).div_(255.0)

    def class_drawers(self) -> Tensor:
        """The drawer number (``_01`` -> 1 .. ``_20`` -> 20) of every image of :meth:`class_images`:
        int64 ``[num_classes, num_drawers]``. Raises ``ValueError`` if a file name does not end
        in ``_NN.png`` or the classes differ in size."""
        counts = set(self.class_counts())
        if len(counts) != 1:
            raise ValueError(f"class_drawers() needs the same number of images in every class, got "
                             f"counts {sorted(counts)} in {self.source}")
        drawers = []
        for name in self.files:
            stem = name.rsplit(".", 1)[0]
            tail = stem.rsplit("_", 1)[-1]
            if "_" not in stem or not tail.isdigit():
                raise ValueError(f"cannot read the drawer from {name!r} in {self.source}: expected "
                                 f"<image>_<drawer>.png, e.g. 0101_01.png")
            drawers.append(int(tail))
        return torch.tensor(drawers, dtype=torch.int64).reshape(self.num_classes, counts.pop())

    def class_alphabet_names(self) -> list[str]:
        """The alphabet name of each class ``[num_classes]`` (e.g. ``"Latin"``)."""
        return [self.alphabets[a] for a in self.character_alphabet]

    def __repr__(self) -> str:
        return (f"Omniglot({self.set_name}: {len(self.alphabets)} alphabets, {self.num_classes} "
                f"characters, {len(self)} images, source={str(self.source)!r})")


# --------------------------------------------------------------------------- Vinyals split
@dataclass(frozen=True)
class VinyalsSplit:
    """Class images of the Vinyals split; unpack as ``train, val, test = vinyals_split()``.

    Attributes:
        train, val, test: float32 ``[num_characters * num_rotations, 20, 1, 28, 28]``;
            class ``c * num_rotations + r`` is character ``c`` rotated by ``rotations[r]``.
        train_characters, val_characters, test_characters: ``"Alphabet/characterNN"`` names.
        rotations: the rotation angles in degrees (counter-clockwise).
    """

    train: Tensor
    val: Tensor
    test: Tensor
    train_characters: list[str]
    val_characters: list[str]
    test_characters: list[str]
    rotations: tuple[int, ...]

    def __iter__(self) -> Iterator[Tensor]:
        return iter((self.train, self.val, self.test))


def rotate_classes(class_images: Tensor, rotations: Sequence[int] = (0, 90, 180, 270)) -> Tensor:
    """Make each rotation of each class a new class.

    Args:
        class_images: ``[C, M, ch, H, W]`` with ``H == W``.
        rotations: angles in degrees, multiples of 90 (counter-clockwise as displayed).

    Returns:
        ``[C * len(rotations), M, ch, H, W]``; class ``c * len(rotations) + r`` is class ``c``
        rotated by ``rotations[r]``.
    """
    if class_images.dim() != 5:
        raise ValueError(f"class_images must be [C, M, ch, H, W], got {list(class_images.shape)}")
    for angle in rotations:
        if angle % 90:
            raise ValueError(f"rotations must be multiples of 90 degrees, got {angle}")
    if not rotations:
        raise ValueError("rotations must hold at least one angle, e.g. (0,)")
    rotated = [torch.rot90(class_images, k=(angle // 90) % 4, dims=(-2, -1)) for angle in rotations]
    return torch.stack(rotated, dim=1).flatten(0, 1)


def vinyals_split(root: str | os.PathLike | None = None, download: bool = False, *,
                  background_path: str | os.PathLike | None = None,
                  evaluation_path: str | os.PathLike | None = None,
                  num_train: int = 1200, num_val: int = 100,
                  rotations: Sequence[int] = (0, 90, 180, 270), seed: int = 0,
                  progress: bool = True, opener=None) -> VinyalsSplit:
    """The Vinyals et al. (2016) split: ``num_train`` characters of all 1,623 for training.

    The background and evaluation characters are pooled (background first, each in
    sorted order), shuffled with ``torch.Generator().manual_seed(seed)``; the first
    ``num_train`` are the training pool, of which the last ``num_val`` are held out for
    validation (so train has ``num_train - num_val`` characters; ``num_val=0`` gives the
    paper's 1,200 / 423); the rest are the test characters. Every character of every
    split is then rotated by each angle in ``rotations`` to make new classes.

    Args:
        root, download: as for :class:`Omniglot` (both full zips are needed).
        background_path, evaluation_path: local zips/folders instead of ``root``.

    Returns:
        :class:`VinyalsSplit` with ``train/val/test`` float32
        ``[num_characters * len(rotations), 20, 1, 28, 28]`` (about 400 MB in all for the
        full data with 4 rotations).
    """
    sets = [
        Omniglot(root=root, background=True, download=download, path=background_path,
                 progress=progress, opener=opener),
        Omniglot(root=root, background=False, download=download, path=evaluation_path,
                 progress=progress, opener=opener),
    ]
    per_class = {n for s in sets for n in s.class_counts()}
    if len(per_class) != 1:
        raise ValueError(f"every character needs the same number of drawers, got {sorted(per_class)}")
    images = torch.cat([s.class_images() for s in sets])
    characters = [c for s in sets for c in s.characters]
    total = len(characters)
    if not 0 <= num_val <= num_train <= total:
        raise ValueError(
            f"need 0 <= num_val <= num_train <= number of characters, got num_val={num_val}, "
            f"num_train={num_train} with {total} characters"
        )
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    parts = (order[: num_train - num_val], order[num_train - num_val: num_train], order[num_train:])
    rotations = tuple(int(r) for r in rotations)
    train, val, test = (rotate_classes(images[idx], rotations) for idx in parts)
    names = [[characters[i] for i in idx.tolist()] for idx in parts]
    return VinyalsSplit(train, val, test, names[0], names[1], names[2], rotations)
