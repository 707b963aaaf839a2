"""Fetch one file over HTTP(S) into the cache: restartable, checksum-verified, atomic.

The bytes go to ``<dest>.part``. An interrupted download leaves only that ``.part``
file, which is never taken as complete; the next call resumes it with an HTTP
``Range`` request when the server allows (``206 Partial Content``) and restarts from
zero otherwise. When all bytes are in, the SHA-256 is checked against the pinned value:
on a match the ``.part`` file is renamed over ``dest`` (``os.replace``, atomic); on a
mismatch it is deleted and :class:`ChecksumError` names both hashes.

Standard library only (``urllib``).
"""
from __future__ import annotations

import contextlib
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from ..atomic import sha256_file

__all__ = ["DownloadError", "ChecksumError", "download_file", "verify_file", "part_path"]

CHUNK_SIZE = 1 << 16
DEFAULT_TIMEOUT_S = 60.0

# (request, timeout) -> a file-like HTTP response (``urllib.request.urlopen``'s shape).
Opener = Callable[..., object]


class DownloadError(OSError):
    """A file could not be fetched (no network, HTTP error, interrupted transfer)."""


class ChecksumError(ValueError):
    """A file's SHA-256 is not the pinned one. ``expected`` and ``actual`` hold both."""

    def __init__(self, message: str, expected: str, actual: str):
        super().__init__(message)
        self.expected = expected
        self.actual = actual


def part_path(dest: str | os.PathLike) -> Path:
    """Where the bytes of ``dest`` accumulate while downloading: ``<dest>.part``."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


def verify_file(path: str | os.PathLike, sha256: str | None) -> str:
    """SHA-256 of ``path``; raises :class:`ChecksumError` if ``sha256`` is given and differs."""
    actual = sha256_file(path)
    if sha256 is not None and actual != sha256.lower():
        raise ChecksumError(
            f"checksum mismatch for {path}: expected sha256 {sha256.lower()}, got {actual}",
            expected=sha256.lower(),
            actual=actual,
        )
    return actual


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)?/(\d+|\*)")


def _status(response) -> int:
    code = getattr(response, "status", None)
    if code is None and hasattr(response, "getcode"):
        code = response.getcode()
    return 200 if code is None else int(code)  # file:// responses carry no status


def _header(response, name: str) -> str | None:
    headers = getattr(response, "headers", None)
    return headers.get(name) if headers is not None else None


def download_file(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None,
    *,
    size: int | None = None,
    opener: Opener | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` unless ``dest`` already holds the pinned bytes.

    Args:
        url: an ``http(s)://`` (or ``file://``) address.
        dest: the final path; it exists only once its bytes are verified.
        sha256: the pinned hex SHA-256 (``None`` skips the check: only for files whose
            hash is unknown, the caller should then record the returned file's hash).
        size: the expected size in bytes, if known (used to detect a stale ``.part``).
        opener: ``(request, timeout=...) -> response``; ``urllib.request.urlopen`` by default
            (tests pass a fake one).
        timeout: socket timeout in seconds.
        progress: show a ``tqdm.auto`` progress bar.

    Returns:
        ``dest`` as a :class:`~pathlib.Path`.

    Raises:
        DownloadError: the transfer failed; a partial ``.part`` file stays for resuming.
        ChecksumError: all bytes arrived but the hash differs; the ``.part`` file is removed.
    """
    dest = Path(dest)
    if dest.exists():
        verify_file(dest, sha256)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    opener = opener or urllib.request.urlopen
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:  # stale or foreign .part: start again
        part.unlink()
        offset = 0

    headers = {"User-Agent": "metalearn-lite (python urllib)"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = opener(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing left to send: the .part may be complete
            return _finish(part, dest, sha256, url)
        raise DownloadError(f"could not download {url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"could not download {url}: {reason}") from exc

    with contextlib.closing(response) if hasattr(response, "close") else contextlib.nullcontext(response):
        status = _status(response)
        mode = "wb"
        if status == 206:
            match = _CONTENT_RANGE.match(_header(response, "Content-Range") or "")
            if not (offset and match and int(match.group(1)) == offset):
                # a part we did not ask for: drop what we have and ask for everything
                with contextlib.suppress(FileNotFoundError):
                    part.unlink()
                if not offset:
                    raise DownloadError(f"could not download {url}: the server sent a partial "
                                        f"response to a request for the whole file")
                return download_file(url, dest, sha256, size=size, opener=opener,
                                     timeout=timeout, progress=progress)
            mode = "ab"  # the server resumes where we stopped
        else:
            offset = 0  # 200: the server sends everything, restart
        length = _header(response, "Content-Length")
        total = offset + int(length) if length and length.isdigit() else size
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                       desc=f"downloading {dest.name}", leave=False)
        try:
            with open(part, mode) as handle:
                while True:
                    try:
                        chunk = response.read(CHUNK_SIZE)
                    except (OSError, ValueError) as exc:  # includes socket timeouts, resets
                        raise DownloadError(
                            f"download of {url} was interrupted after "
                            f"{handle.tell()} bytes ({exc}); the partial file {part} is kept, "
                            f"run again to resume"
                        ) from exc
                    if not chunk:
                        break
                    handle.write(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
                handle.flush()
                os.fsync(handle.fileno())
                received = handle.tell()
        finally:
            if bar is not None:
                bar.close()
    if total is not None and received < total:
        raise DownloadError(
            f"download of {url} stopped at {received} of {total} bytes; the partial file "
            f"{part} is kept, run again to resume"
        )
    return _finish(part, dest, sha256, url)


def _finish(part: Path, dest: Path, sha256: str | None, url: str) -> Path:
    """Verify the complete ``.part`` file and rename it to ``dest``; delete it on mismatch."""
    try:
        verify_file(part, sha256)
    except ChecksumError as exc:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
        raise ChecksumError(
            f"the file downloaded from {url} does not have the pinned checksum: expected "
            f"sha256 {exc.expected}, got {exc.actual}; the partial file {part} was removed",
            expected=exc.expected,
            actual=exc.actual,
        ) from None
    os.replace(part, dest)
    return dest
