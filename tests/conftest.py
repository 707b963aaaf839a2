"""Shared pytest fixtures (kept minimal: each test module owns its own set-up)."""
from __future__ import annotations

from pathlib import Path

import pytest

from metalearn_lite.paths import CACHE_ENV

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"

# Hostile submissions are the grader tests' input, never tests themselves (``scripts/test``
# runs tests/ and notebooks/ in one ``pytest --nbval`` run, which would collect them).
collect_ignore_glob = ["attacks/*"]


@pytest.fixture
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty cache root: ``$METALEARN_LITE_CACHE`` points to it for one test."""
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv(CACHE_ENV, str(cache))
    return cache


@pytest.fixture(scope="session", autouse=True)
def private_assignments(tmp_path_factory: pytest.TempPathFactory):
    """The instructor's private assignment folder (reference code, hidden tests, a term
    seed), written once from solutions/ as ``metalearn homework private`` does, with
    ``$METALEARN_ASSIGNMENTS`` pointing to it so the grader's tests find it."""
    from metalearn_lite.grading.assignment import PRIVATE_ENV
    from metalearn_lite.grading.private import write_private_folder

    folder = tmp_path_factory.mktemp("private_assignments")
    write_private_folder(folder, REPO_ROOT / "solutions", seed=20261)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PRIVATE_ENV, str(folder))
        yield folder


@pytest.fixture
def shared_dir() -> Path:
    """``../shared`` beside the checkout (developers' data and notes); skips when absent.

    The project must work without it, so tests that need it skip cleanly.
    """
    if not SHARED_DIR.is_dir():
        pytest.skip(f"{SHARED_DIR} not present (developer-only data)")
    return SHARED_DIR


@pytest.fixture
def one_torch_thread():
    """Run a test with one torch thread (float sums then repeat exactly), restoring the count after.
    Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Under ``scripts/test`` pytest-xdist hands whole files to two workers in collection order,
# so a long file collected last becomes the run's tail while the other worker idles. Start
# the longest first: the browser module (each widget chapter run in JupyterLab, ~7 min),
# then the notebooks, latest chapter first (the later chapters train more), then the rest.
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    notebooks = sorted({item.path.name for item in items if item.path.suffix == ".ipynb"}, reverse=True)

    def start_order(item: pytest.Item) -> tuple[int, int]:
        if item.path.name == "test_browser_widgets.py":
            return (0, 0)
        if item.path.suffix == ".ipynb":
            return (1, notebooks.index(item.path.name))
        return (2, 0)

    items.sort(key=start_order)  # stable: cells and tests keep their order within a file

