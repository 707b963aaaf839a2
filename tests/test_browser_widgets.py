"""The course widgets in a real JupyterLab, driven by a real (headless) Chromium.

nbval never renders a widget; this module does. For every chapter notebook whose stored
outputs hold widget views it:

1. starts JupyterLab on 127.0.0.1 (free port, random token) on a *copy* of the notebooks,
   with a per-run config/settings dir (no announcements, notebook ``windowingMode`` "none"
   so off-screen outputs render);
2. opens the notebook in Chromium (Debian's ``/usr/bin/chromium`` through Python
   playwright; every request that is not to the local server is aborted);
3. runs all cells with JupyterLab's own ``notebook:run-all-cells`` command (it resolves
   ``false`` when a cell raised);
4. for each course widget (a widget view with a static ``image/png`` fallback, see
   ``metalearn_lite/widgets/base.py``): asserts it rendered as a live widget (sliders or
   buttons in the DOM, no ``VBox(children=...`` text fallback), moves a slider with the
   keyboard or clicks a button, and asserts the bytes of the plot ``<img>`` changed.

Screenshots go to ``artifacts/screenshots/<notebook>-<n>-{before,after}.png``.

A second test disables the widget front end (``@jupyter-widgets/jupyterlab-manager``) in
the run's own config dir and asserts that the same check then FAILS.

Skips only when ``/usr/bin/chromium`` or the ``playwright`` package is missing, unless
``METALEARN_REQUIRE_BROWSER=1`` (set by ``.ci/run``), where a missing piece fails.
Install: ``apt-get install chromium`` and ``pip install -c constraints.txt playwright``
(never ``playwright install``: it downloads a browser).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
SCREENSHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGETS_EXTENSION = "@jupyter-widgets/jupyterlab-manager"
# Per notebook (training chapters run their short defaults); METALEARN_BROWSER_TIMEOUT overrides.
RUN_ALL_TIMEOUT_S = float(os.environ.get("METALEARN_BROWSER_TIMEOUT", "240"))
REDRAW_TIMEOUT_S = 60    # one widget redraw on a busy 2-core box
TEXT_FALLBACKS = ("VBox(children=", "HBox(children=", "interactive(", "Box(children=")

pytestmark = pytest.mark.slow


def require_browser() -> None:
    """Skip (or, with METALEARN_REQUIRE_BROWSER=1, fail) when Chromium/playwright are missing."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (Debian: apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright Python package (pip install -c constraints.txt playwright)")
    if not missing:
        return
    message = "browser widget tests need " + " and ".join(missing)
    if os.environ.get("METALEARN_REQUIRE_BROWSER") == "1":
        pytest.fail(message + "; METALEARN_REQUIRE_BROWSER=1 forbids skipping", pytrace=False)
    pytest.skip(message)


# ------------------------------------------------------------------ stored notebooks
def course_widget_count(notebook: dict) -> tuple[int, int]:
    """(widget views, course widgets) among a stored notebook's outputs.

    A course widget is a widget view with an ``image/png`` fallback next to it
    (``CourseWidget._repr_mimebundle_``); other views are e.g. tqdm progress bars.
    """
    views = course = 0
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            data = output.get("data", {})
            if WIDGET_VIEW in data:
                views += 1
                course += "image/png" in data
    return views, course


def widget_notebooks() -> list[tuple[str, int]]:
    """``[(file name, expected course widgets)]`` for the notebooks with course widgets.

    Notebooks whose only widget views are progress bars are left out (nothing to move).
    ``METALEARN_BROWSER_NOTEBOOKS=00_welcome,04_neural_processes`` narrows the list.
    """
    only = {n.strip() for n in os.environ.get("METALEARN_BROWSER_NOTEBOOKS", "").split(",") if n.strip()}
    found = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        views, course = course_widget_count(json.loads(path.read_text(encoding="utf-8")))
        if course and (not only or path.stem in only):
            found.append((path.name, course))
    return found


def browser_opt_out(name: str) -> str | None:
    """A notebook too slow to run whole in CI's budget may opt out with the metadata
    ``{"metalearn": {"browser_test": false, "browser_test_reason": "..."}}``: its reason."""
    meta = json.loads((NOTEBOOKS / name).read_text(encoding="utf-8")).get("metadata", {}).get("metalearn", {})
    if meta.get("browser_test", True) is False:
        return f"{name} opts out of the browser run: {meta.get('browser_test_reason', 'no reason given')}"
    return None


# -------------------------------------------------------------------------- server
@dataclass
class LabServer:
    """A JupyterLab on 127.0.0.1 serving ``root``; ``stop()`` kills its process group."""

    root: Path
    port: int
    token: str
    process: subprocess.Popen
    log: Path
    env: dict = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def notebook_url(self, name: str) -> str:
        # A fresh workspace per page: JupyterLab would otherwise restore the tabs an earlier
        # test left open and could activate one of them, hiding this notebook's outputs.
        return f"{self.origin}/lab/workspaces/w{secrets.token_hex(6)}/tree/{quote(name)}?token={self.token}"

    def set_extension(self, name: str, enabled: bool) -> None:
        """What ``jupyter labextension enable/disable --level=user`` writes, in this server's
        own config dir (``<JUPYTER_CONFIG_DIR>/labconfig/page_config.json``), without the 8 s
        the command takes to start; JupyterLab reads the file on every page load, so the
        next page sees the change without a restart."""
        path = Path(self.env["JUPYTER_CONFIG_DIR"]) / "labconfig" / "page_config.json"
        config = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        config.setdefault("disabledExtensions", {})[name] = not enabled
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(config, indent=2), encoding="utf-8")
        os.replace(tmp, path)

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
            except ProcessLookupError:
                pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_lab_settings(settings_dir: Path) -> None:
    """No news/update checks; render every cell (windowingMode none)."""
    settings = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false", "checkForUpdates": False,
        },
    }
    for relative, value in settings.items():
        target = settings_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(value), encoding="utf-8")


def start_lab(workdir: Path) -> LabServer:
    """Start JupyterLab on a copy of notebooks/ in ``workdir``; wait until it answers."""
    root = workdir / "notebooks"
    shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for path in root.glob("*.ipynb"):
        # Start from clean notebooks, as a student who clears the outputs: every widget seen must
        # come from the live kernel, and no stale stored view lingers in the page (a hidden copy
        # of a stored widget made a run fail with "element is not visible").
        notebook = json.loads(path.read_text(encoding="utf-8"))
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                cell["outputs"], cell["execution_count"] = [], None
        notebook["metadata"].pop("widgets", None)
        path.write_text(json.dumps(notebook, indent=1), encoding="utf-8")
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # a student's kernel uses the inline backend
    for var, sub in [("JUPYTER_CONFIG_DIR", "config"), ("JUPYTERLAB_SETTINGS_DIR", "settings"),
                     ("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
                     ("IPYTHONDIR", "ipython")]:
        env[var] = str(workdir / sub)
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    write_lab_settings(workdir / "settings")
    port, token = free_port(), secrets.token_hex(16)
    log = workdir / "jupyterlab.log"
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
        "--LabApp.expose_app_in_browser=True", f"--ServerApp.root_dir={root}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",  # no PyPI look-ups from the extension manager
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI containers run as root
    with open(log, "wb") as log_file:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=log_file,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    server = LabServer(root, port, token, process, log, env)
    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.origin}/api/status?token={token}", timeout=5) as reply:
                if reply.status == 200:
                    return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"JupyterLab did not answer within 90 s:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


# ------------------------------------------------------------------------ the check
class WidgetCheckError(AssertionError):
    """A widget did not render as a widget, or did not redraw after an interaction."""


@dataclass
class WidgetResult:
    index: int
    action: str
    before: Path
    after: Path


# JS helpers evaluated in the page.
_RUN_ALL = """async (timeoutMs) => {
    const app = window.jupyterapp;
    await app.commands.execute('notebook:clear-all-cell-outputs');
    const timeout = new Promise(resolve => setTimeout(() => resolve('timeout'), timeoutMs));
    return await Promise.race([app.commands.execute('notebook:run-all-cells'), timeout]);
}"""
_KERNEL_IDLE = """() => {
    const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
    return !!kernel && kernel.status === 'idle' && kernel.connectionStatus === 'connected';
}"""
_KERNEL_STATE = """() => {
    const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
    return kernel ? kernel.status + '/' + kernel.connectionStatus : 'none';
}"""
_IMAGE_HASH = """async (img) => {
    if (!img.src) return '';
    const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
    let h = 2166136261;
    for (let i = 0; i < bytes.length; i++) { h ^= bytes[i]; h = Math.imul(h, 16777619) >>> 0; }
    return bytes.length + ':' + h.toString(16);
}"""
_OUTPUTS_TEXT = """() => Array.from(document.querySelectorAll('.jp-OutputArea-output'))
    .map(node => node.innerText.trim().slice(0, 80))"""
# A course widget's output: a live widget box holding the plot <img class="widget-image">.
WIDGET_OUTPUT = ".jp-OutputArea-output:has(.jupyter-widgets img.widget-image)"
CONTROLS = ".widget-slider, .widget-button, .widget-dropdown"
_VISIBLE_AT_LEAST = """([selector, n]) => Array.from(document.querySelectorAll(selector))
    .filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; }).length >= n"""


def _image_hash(output) -> str:
    return output.locator("img.widget-image").first.evaluate(_IMAGE_HASH)


def _wait_settled(page, output, timeout_s: float) -> str:
    """Wait for an idle kernel and a plot that stays the same for 0.6 s; its hash."""
    deadline = time.monotonic() + timeout_s
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        current = _image_hash(output) if page.evaluate(_KERNEL_IDLE) else None
        if current is not None and current == last and current and time.monotonic() - since >= 0.6:
            return current
        if current != last:
            last, since = current, time.monotonic()
        page.wait_for_timeout(150)
    raise WidgetCheckError(f"the plot did not settle within {timeout_s:.0f} s (kernel busy or redrawing)")


def _wait_for_new_plot(page, output, old_hash: str) -> bool:
    deadline = time.monotonic() + REDRAW_TIMEOUT_S
    while time.monotonic() < deadline:
        if _image_hash(output) != old_hash:
            return True
        page.wait_for_timeout(150)
    return False


def _slider_value(widget) -> str:
    readout = widget.locator(".widget-readout")
    handle = widget.locator(".noUi-handle").first
    return (handle.get_attribute("aria-valuenow") or "") + "|" + (readout.first.inner_text() if readout.count() else "")


def _diagnosis(page, output) -> str:
    """What a failed redraw left behind, for the error message: the kernel's state, the
    widget's own error line (``CourseWidget.status``) and a screenshot. It named a rare CI
    failure: matplotlib failing to parse a mathtext tick label in chapter 02's player."""
    try:
        kernel = page.evaluate(_KERNEL_STATE)
        # CourseWidget.status (an HTML widget under the plot) says when a redraw raised
        text = " | ".join(t.strip()[:300] for t in output.locator(".widget-html").all_inner_texts() if t.strip())
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOTS / f"failed-redraw-{int(time.time())}.png"
        output.screenshot(path=str(shot))
        return f"; kernel {kernel}; text under the plot: {text or 'none'}; screenshot {shot}"
    except Exception as error:  # the diagnosis must not hide the failure itself
        return f"; (no diagnosis: {error!r})"


def _interact(page, output, old_hash: str) -> str:
    """Move a slider (keyboard on its focused handle) or click a button; what was done.

    A key press that leaves the slider's value unchanged (already at its end) is undone
    by trying the other direction; a changed value must redraw the plot.
    """
    sliders = output.locator(".widget-slider")
    for i in range(sliders.count()):
        slider = sliders.nth(i)
        for key in ("ArrowRight", "ArrowLeft"):
            before = _slider_value(slider)
            slider.locator(".noUi-handle").first.focus()
            page.keyboard.press(key)
            page.wait_for_timeout(100)
            if _slider_value(slider) == before:
                continue  # at the end of its range: try the other way
            if _wait_for_new_plot(page, output, old_hash):
                return f"slider {i} {key}"
            raise WidgetCheckError(f"slider {i} moved ({before} -> {_slider_value(slider)}) "
                                   f"but the plot did not change within {REDRAW_TIMEOUT_S} s"
                                   + _diagnosis(page, output))
    buttons = output.locator(".widget-button")
    for i in range(buttons.count()):
        name = buttons.nth(i).inner_text().strip()
        buttons.nth(i).click()
        if _wait_for_new_plot(page, output, old_hash):
            return f"button {name!r}"
    raise WidgetCheckError(f"the plot did not change after moving {sliders.count()} sliders "
                           f"and clicking {buttons.count()} buttons")


def check_notebook_widgets(page, server: LabServer, name: str, expected: int,
                           shots_dir: Path = SCREENSHOTS) -> list[WidgetResult]:
    """Open ``name`` in ``page``, run all cells, interact with each course widget.

    Raises ``WidgetCheckError`` when a cell fails, fewer than ``expected`` widgets render
    as live widgets, a text fallback shows, or a plot does not change after interaction.
    """
    page.goto(server.notebook_url(name), wait_until="domcontentloaded")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                           " && window.jupyterapp.shell.currentWidget.sessionContext", timeout=90_000)
    page.wait_for_function(_KERNEL_IDLE, timeout=90_000)
    result = page.evaluate(_RUN_ALL, RUN_ALL_TIMEOUT_S * 1000)
    if result == "timeout":
        raise WidgetCheckError(f"{name}: run-all-cells did not finish within {RUN_ALL_TIMEOUT_S} s")
    if result is not True:
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        detail = errors.last.inner_text()[-1500:] if errors.count() else ""
        raise WidgetCheckError(f"{name}: notebook:run-all-cells returned {result!r} (a cell raised)\n{detail}")
    page.wait_for_function(_KERNEL_IDLE, timeout=60_000)
    fallbacks = [t for t in page.evaluate(_OUTPUTS_TEXT) if t.startswith(TEXT_FALLBACKS)]
    if fallbacks:
        raise WidgetCheckError(f"{name}: widgets shown as their text fallback, e.g. {fallbacks[0]!r}")
    outputs = page.locator(WIDGET_OUTPUT).filter(visible=True)
    try:  # wait until enough widget outputs are laid out (a view renders a moment after its cell ends)
        page.wait_for_function(_VISIBLE_AT_LEAST, arg=[WIDGET_OUTPUT, expected], timeout=20_000)
    except Exception:
        pass
    found = outputs.count()
    if found < expected:
        raise WidgetCheckError(f"{name}: {found} of {expected} course widgets rendered as live widgets "
                               f"(is the widget front end {WIDGETS_EXTENSION} missing?)")
    shots_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(name).stem
    results = []
    for index in range(found):
        output = outputs.nth(index)
        output.scroll_into_view_if_needed()
        if output.locator(CONTROLS).count() == 0:
            raise WidgetCheckError(f"{name}: widget {index} has no slider, button or dropdown")
        before_hash = _wait_settled(page, output, REDRAW_TIMEOUT_S)
        before = shots_dir / f"{stem}-{index}-before.png"
        output.screenshot(path=str(before))
        action = _interact(page, output, before_hash)
        after_hash = _wait_settled(page, output, REDRAW_TIMEOUT_S)
        if after_hash == before_hash:
            raise WidgetCheckError(f"{name}: widget {index}: plot back to its old bytes after {action}")
        after = shots_dir / f"{stem}-{index}-after.png"
        output.screenshot(path=str(after))
        results.append(WidgetResult(index, action, before, after))
    return results


# ------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def browser():
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def close_page(page) -> None:
    """Shut down the page's notebook kernel (frees its memory), then close the page."""
    try:
        page.evaluate("""async () => {
            const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
            if (w && w.sessionContext) { await w.sessionContext.shutdown(); }
        }""")
    except Exception:
        pass  # the page may already be gone; the server's teardown stops the kernel anyway
    page.context.close()


def offline_page(browser, server: LabServer):
    """A page that may only talk to ``server`` (every other request is aborted)."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    allowed = f"127.0.0.1:{server.port}"
    blocked: list[str] = []

    def gate(route):
        url = route.request.url
        if urlsplit(url).netloc == allowed:
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    page.route("**/*", gate)
    page.blocked = blocked
    return page


@pytest.fixture(scope="module")
def lab(browser, tmp_path_factory):
    server = start_lab(tmp_path_factory.mktemp("lab"))
    try:
        yield server
    finally:
        server.stop()


WIDGET_NOTEBOOKS = widget_notebooks()


# ---------------------------------------------------------------------------- tests
def test_some_chapter_has_course_widgets():
    assert WIDGET_NOTEBOOKS, (
        f"no notebook under {NOTEBOOKS} stores a course widget output ({WIDGET_VIEW} + image/png)"
        + (" among METALEARN_BROWSER_NOTEBOOKS" if os.environ.get("METALEARN_BROWSER_NOTEBOOKS") else ""))


@pytest.mark.parametrize("name, expected", [
    pytest.param(n, e, id=n, marks=[pytest.mark.skip(reason=browser_opt_out(n))] if browser_opt_out(n) else [])
    for n, e in WIDGET_NOTEBOOKS])
def test_widgets_render_and_respond_in_jupyterlab(browser, lab, name, expected):
    page = offline_page(browser, lab)
    start = time.monotonic()
    try:
        results = check_notebook_widgets(page, lab, name, expected)
    finally:
        close_page(page)
    assert len(results) >= expected
    for result in results:
        assert result.before.stat().st_size > 0 and result.after.stat().st_size > 0
    print(f"{name}: {len(results)} widgets checked in {time.monotonic() - start:.0f} s: "
          + "; ".join(r.action for r in results))


# A tiny notebook with one course widget: fast input for the failure-mode test.
PROBE_NOTEBOOK = {
    "cells": [{
        "cell_type": "code", "execution_count": None, "id": "probe", "metadata": {}, "outputs": [],
        "source": ["from metalearn_lite.widgets.welcome import SupportSizeWidget\n",
                   "SupportSizeWidget()"],
    }],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
    "nbformat": 4, "nbformat_minor": 5,
}


def test_check_fails_without_the_widget_front_end(browser, lab, tmp_path_factory):
    """Same probe notebook, same server: passes with the widget manager, FAILS without it
    (``jupyter labextension disable @jupyter-widgets/jupyterlab-manager`` in the run's config)."""
    (lab.root / "probe.ipynb").write_text(json.dumps(PROBE_NOTEBOOK), encoding="utf-8")
    shots = tmp_path_factory.mktemp("probe-shots")
    has_manager = f"() => window.jupyterapp.hasPlugin('{WIDGETS_EXTENSION}:plugin')"
    page = offline_page(browser, lab)
    try:
        assert len(check_notebook_widgets(page, lab, "probe.ipynb", 1, shots)) == 1
        assert page.evaluate(has_manager) is True
    finally:
        close_page(page)

    lab.set_extension(WIDGETS_EXTENSION, enabled=False)
    try:
        page = offline_page(browser, lab)
        try:
            with pytest.raises(WidgetCheckError, match="rendered as live widgets|text fallback"):
                check_notebook_widgets(page, lab, "probe.ipynb", 1, shots)
            # JupyterLab loaded and ran the cell: what is missing is the widget front end.
            assert page.evaluate(has_manager) is False
            assert page.locator(".jp-OutputArea-output").count() >= 1
        finally:
            close_page(page)
    finally:
        lab.set_extension(WIDGETS_EXTENSION, enabled=True)
    page_config = json.loads((Path(lab.env["JUPYTER_CONFIG_DIR"]) / "labconfig" / "page_config.json").read_text())
    assert not page_config.get("disabledExtensions", {}).get(WIDGETS_EXTENSION), page_config


def test_pages_never_leave_the_local_server(browser, lab):
    page = offline_page(browser, lab)
    try:
        page.goto(f"{lab.origin}/lab?token={lab.token}", wait_until="domcontentloaded")
        page.wait_for_function("() => !!window.jupyterapp", timeout=90_000)
        outside = page.evaluate("() => fetch('http://example.invalid/').then(() => 'reached', e => 'blocked')")
    finally:
        close_page(page)
    assert outside == "blocked"
    assert any("example.invalid" in url for url in page.blocked)


# The static site's maths, search, sidebar and launch buttons: tests/test_site.py (browser tests).
