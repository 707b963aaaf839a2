"""Read a submissions folder without trusting it (the grader's parent side).

``scan_folder(folder)`` looks at every entry once, with ``lstat`` (no link is followed),
and sorts it into

- ``accepted``: ``(student id, path)`` for regular ``.py`` / ``.ipynb`` files (the
  extension in any case: ``Carol.IPYNB`` is a notebook) of at most ``MAX_SUBMISSION_BYTES``;
- ``rejected``: ``(shown name, reason)`` for everything else: hidden files, folders,
  symbolic links, FIFOs, sockets, devices, other extensions, files over the size cap,
  and names that are the same after Unicode normalisation (``josé`` written precomposed
  and as ``e`` + combining accent look identical: both are rejected, naming each other,
  instead of one silently replacing the other).

Student ids are the file stem in Unicode NFC with letters, digits and ``. _ @ + -``
kept (``josé`` and ``josè`` stay two students) and anything else replaced by ``_``;
they never start like a spreadsheet formula and are unique even on a case-insensitive
file system (a clash takes the file's full name, then a ``-2`` suffix).

``read_submission(path)`` opens with ``O_NOFOLLOW | O_NONBLOCK``, checks with ``fstat``
that it got a regular file and reads at most the cap: a link to ``/dev/zero`` or
``/dev/stdin``, or a FIFO swapped in after the scan, is refused instead of hanging the
grader or exhausting its memory.

``remove_tree(path)`` deletes a directory tree of any depth without following links or
keeping more than two descriptors open, making directories writable on the way.
"""
from __future__ import annotations

import os
import stat
import unicodedata
from pathlib import Path

__all__ = ["MAX_SUBMISSION_BYTES", "SUFFIXES", "UnreadableSubmission", "scan_folder",
           "read_submission", "shown_name", "safe_id", "remove_tree"]

MAX_SUBMISSION_BYTES = 20 << 20
SUFFIXES = (".py", ".ipynb")
_ID_EXTRA = set("._@+-")
_MAX_ID_BYTES = 150


class UnreadableSubmission(OSError):
    """A submission that cannot be read safely (the reason is in ``str(exc)``)."""


def shown_name(name: str, limit: int = 120) -> str:
    """A file name as plain printable text: control, invisible and undecodable characters
    (and the combining marks of a name not in NFC) become ``\\x..``/``\\u....`` escapes; at most ``limit`` characters."""
    out = []
    denormal = unicodedata.normalize("NFC", name) != name  # show combining marks as codes
    for ch in name:
        cat = unicodedata.category(ch)
        if cat[0] == "C" or cat in ("Zl", "Zp") or ch == "\\" or (denormal and cat[0] == "M"):
            code = ord(ch)
            out.append("\\\\" if ch == "\\" else f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}")
        else:
            out.append(ch)
    text = "".join(out)
    return text if len(text) <= limit else text[:limit] + "..."


def safe_id(name: str) -> str:
    """File name -> student id: NFC; letters, digits and ``. _ @ + -`` kept, anything else
    ``_``; never starts like a spreadsheet formula (``= + - @``); at most 150 UTF-8 bytes."""
    name = unicodedata.normalize("NFC", name)
    chars = []
    for ch in name:
        cat = unicodedata.category(ch)
        keep = ch in _ID_EXTRA or (cat[0] in "LN" or cat in ("Mn", "Mc")) and ch.isprintable()
        chars.append(ch if keep else "_")
    sid = "".join(chars) or "_"
    while len(sid.encode("utf-8")) > _MAX_ID_BYTES:
        sid = sid[:-1]
    return "_" + sid if sid[0] in "=+-@." else sid


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder (submit one .ipynb or .py file)"
    if stat.S_ISLNK(mode):
        return "a symbolic link (submit the file itself)"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe), not a regular file"
    if stat.S_ISSOCK(mode):
        return "a socket, not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device, not a regular file"
    return "not a regular file"


def scan_folder(folder: str | Path,
                max_bytes: int = MAX_SUBMISSION_BYTES) -> tuple[list[tuple[str, Path]], list[tuple[str, str]]]:
    """``(accepted, rejected)`` for every entry of ``folder`` (see the module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"submissions folder {folder} does not exist")
    entries = []
    with os.scandir(folder) as it:
        for entry in it:
            entries.append(entry.name)
    candidates, rejected = [], []
    for name in sorted(entries):
        shown = shown_name(name)
        try:
            st = os.lstat(folder / name)
        except OSError as exc:
            rejected.append((shown, f"cannot be examined ({exc.strerror})"))
            continue
        stem, dot, ext = name.rpartition(".")
        if name.startswith("."):
            rejected.append((shown, "a hidden file or folder (its name starts with '.')"))
        elif not stat.S_ISREG(st.st_mode):
            rejected.append((shown, _kind(st.st_mode)))
        elif not dot or not stem or f".{ext.lower()}" not in SUFFIXES:
            rejected.append((shown, "not a .ipynb or .py file"))
        elif st.st_size > max_bytes:
            rejected.append((shown, f"{st.st_size} bytes, more than the {max_bytes}-byte limit"))
        else:
            candidates.append((name, stem))
    # Names that differ only in Unicode normalisation look identical: refuse to guess.
    by_form: dict[str, list[str]] = {}
    for name, _ in candidates:
        by_form.setdefault(unicodedata.normalize("NFC", name), []).append(name)
    accepted, seen = [], set()
    for name, stem in candidates:
        clash = [n for n in by_form[unicodedata.normalize("NFC", name)] if n != name]
        if clash:
            others = ", ".join(f"'{shown_name(n)}'" for n in clash)
            rejected.append((shown_name(name), f"ambiguous name: the same as {others} after "
                             "Unicode normalisation (rename one of them)"))
            continue
        sid = safe_id(stem)
        if sid.casefold() in seen:
            sid = safe_id(name)
        base, n = sid, 2
        while sid.casefold() in seen:
            sid, n = f"{base}-{n}", n + 1
        seen.add(sid.casefold())
        accepted.append((sid, folder / name))
    return accepted, sorted(rejected)


def read_submission(path: str | Path, max_bytes: int = MAX_SUBMISSION_BYTES) -> bytes:
    """The bytes of a regular file, read without following a link and at most ``max_bytes``."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if os.path.islink(path):
            raise UnreadableSubmission("a symbolic link (submit the file itself)") from None
        raise UnreadableSubmission(f"cannot be opened ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnreadableSubmission(_kind(st.st_mode))
        if st.st_size > max_bytes:
            raise UnreadableSubmission(f"{st.st_size} bytes, more than the {max_bytes}-byte limit")
        chunks, total = [], 0
        while total <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            raise UnreadableSubmission(f"more than the {max_bytes}-byte limit")
        return b"".join(chunks)
    finally:
        os.close(fd)


def remove_tree(path: str | Path) -> None:
    """Delete ``path`` (a file or a directory tree of any depth); links are removed, never
    followed. Raises ``OSError`` if something cannot be removed."""
    path = os.fspath(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    dflags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, dflags)
    names: list[str] = []  # the path from ``path`` down to the current directory
    try:
        while True:
            try:
                os.fchmod(fd, 0o700)
            except OSError:
                pass
            child = None
            with os.scandir(fd) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        child = entry.name
                        break
                    os.unlink(entry.name, dir_fd=fd)
            if child is not None:
                new = os.open(child, dflags, dir_fd=fd)
                os.close(fd)
                fd = new
                names.append(child)
                continue
            if not names:
                break
            parent = os.open("..", dflags, dir_fd=fd)
            os.close(fd)
            fd = parent
            os.rmdir(names.pop(), dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(path)
