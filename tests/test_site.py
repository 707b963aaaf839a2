"""The course website (tools/site.py, book/conf.py, scripts/site): Sphinx + myst-nb +
sphinx-book-theme, built from the stored notebooks without executing them.

Static checks on the built HTML first; then (slow, in Debian's Chromium through playwright,
as tests/test_browser_widgets.py) the site served from a local HTTP server with every other
request blocked: sidebar, search, typeset maths, launch buttons.
"""
from __future__ import annotations

import base64
import functools
import http.server
import json
import re
import threading
from pathlib import Path, PurePosixPath

import pytest

from tools.course_links import course_links
from tools.setup_cell import CELL_ID
from tools.site import (LIVE_NOTE, build_site, check_site, find_pages, index_markdown, internal_links,
                        readme_section, stage, static_notebook)

REPO = Path(__file__).resolve().parents[1]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
CHAPTERS = sorted((REPO / "notebooks").glob("*.ipynb"))
HOMEWORK = sorted((REPO / "exercises").glob("*.ipynb"))
NOTEBOOKS = [p.relative_to(REPO).as_posix() for p in CHAPTERS + HOMEWORK]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if not CHAPTERS:
        pytest.skip("no chapter notebooks under notebooks/ yet")
    return build_site(tmp_path_factory.mktemp("site") / "public", REPO)


def page_of(site, notebook: str) -> str:
    return (site.out / PurePosixPath(notebook).with_suffix(".html")).read_text(encoding="utf-8")


def test_every_notebook_has_a_page_in_the_sidebar_and_on_the_index(site):
    index = (site.out / "index.html").read_text(encoding="utf-8")
    sidebar = index.split('class="bd-sidebar-primary', 1)[1].split("</nav>", 1)[0]
    for notebook in NOTEBOOKS:
        html_name = PurePosixPath(notebook).with_suffix(".html")
        assert (site.out / html_name).is_file(), f"no page for {notebook}"
        assert f'href="{html_name}"' in sidebar, f"the sidebar does not list {notebook}"
    assert not (site.out / "solutions").exists() and "solutions/" not in index, "solutions are never published"
    assert site.warnings == [], site.warnings


def test_every_internal_link_resolves(site):
    assert check_site(site.out) == []
    links = internal_links(page_of(site, NOTEBOOKS[0]), PurePosixPath(NOTEBOOKS[0]).with_suffix(".html"))
    assert len(links) > 10


def test_pages_load_nothing_from_outside_the_site(site):
    for page in [site.out / "index.html", site.out / "search.html", *(site.out / "notebooks").glob("*.html")]:
        text = page.read_text(encoding="utf-8")
        remote = [s for s in re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"', text)
                  if "://" in s or s.startswith("//")]
        assert remote == [], f"{page.name} loads {remote}"
        assert "widget-state+json" not in text and "@jupyter-widgets" not in text


def test_math_uses_the_mathjax_copied_into_the_site(site):
    text = page_of(site, "notebooks/02_maml.ipynb")
    assert '../_static/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe,course-fonts' in text
    for name in ("TeX-AMS-MML_HTMLorMML-full", "Safe", "course-fonts"):
        assert (site.out / "_static" / "mathjax" / "config" / f"{name}.js").is_file(), name
    index = (site.out / "index.html").read_text(encoding="utf-8")
    assert r"\mathcal" in index and 'class="math' in index, "the index states the problem in maths"


def _images_of(site, page: Path) -> set[bytes]:
    text = page.read_text(encoding="utf-8")
    found = set()
    for src in re.findall(r'<img [^>]*src="([^"]+)"', text):
        if src.startswith("data:image/png;base64,"):
            found.add(base64.b64decode(src.split(",", 1)[1]))
        elif "://" not in src:
            found.add((page.parent / src).resolve().read_bytes())
    return found


def test_widgets_show_their_stored_png_and_say_how_to_run_them_live(site):
    checked = 0
    for path in CHAPTERS:
        stored = json.loads(path.read_text(encoding="utf-8"))
        page = site.out / "notebooks" / f"{path.stem}.html"
        images = _images_of(site, page)
        pngs = [base64.b64decode("".join(o["data"]["image/png"])) for c in stored["cells"]
                for o in c.get("outputs", []) if WIDGET_VIEW in o.get("data", {}) and "image/png" in o["data"]]
        for png in pngs:
            assert png in images, f"{path.name}: a widget's static figure is missing from its page"
        text = page.read_text(encoding="utf-8")
        assert text.count("snapshot of an interactive widget") == len(pngs), path.name
        checked += len(pngs)
    assert checked == sum(site.widget_figures[f"notebooks/{p.name}"] for p in CHAPTERS) > 0


def test_the_colab_setup_cell_is_not_on_the_pages(site):
    assert "METALEARN_LITE_WHEEL" not in page_of(site, "notebooks/00_welcome.ipynb")


def test_launch_buttons_name_their_own_notebook_and_download_the_original(site):
    links = course_links()
    for notebook in NOTEBOOKS:
        text = page_of(site, notebook)
        up = "../" * notebook.count("/")
        assert f'href="{links.colab(notebook)}"' in text, notebook
        assert f'href="{links.binder(notebook).replace("lab%2Ftree%2F", "lab/tree/").replace("%2F", "/")}"' in text, notebook
        assert f'href="{up}_sources/{notebook}"' in text, notebook
        assert (site.out / "_sources" / notebook).read_bytes() == (REPO / notebook).read_bytes()


def test_results_page_carries_the_readme_reproduction_tables(site):
    results = readme_section((REPO / "README.md").read_text(encoding="utf-8"), "Results")
    assert results and "| method |" in results
    page = (site.out / "results.html").read_text(encoding="utf-8")
    assert page.count("<table") == results.count("\n|---") + results.startswith("|---")
    first_row = next(line for line in results.splitlines() if line.startswith("| ProtoNet"))
    assert first_row.split("|")[1].strip() in page
    assert "bench/reproduce_fewshot.py" in page, "the commands behind the numbers are shown"
    assert 'href="results.html"' in (site.out / "index.html").read_text(encoding="utf-8")


# ------------------------------------------------------------------ units, no Sphinx run
def test_static_notebook_keeps_the_png_drops_the_view_and_adds_the_live_note():
    output = {"output_type": "display_data", "metadata": {}, "data": {
        WIDGET_VIEW: {"model_id": "a"}, "image/png": "iVBOR", "text/plain": "W()"}}
    nb = {"cells": [{"cell_type": "code", "id": "c1", "metadata": {}, "outputs": [output], "source": "w",
                     "execution_count": 1}], "metadata": {"widgets": {"state": {}}}, "nbformat": 4, "nbformat_minor": 5}
    static, figures = static_notebook(nb)
    assert figures == 1 and "widgets" not in static["metadata"]
    assert set(static["cells"][0]["outputs"][0]["data"]) == {"image/png", "text/plain"}
    assert static["cells"][1]["source"] == LIVE_NOTE
    assert WIDGET_VIEW in nb["cells"][0]["outputs"][0]["data"], "the input notebook is untouched"


def test_index_lists_notebooks_by_glob_so_new_chapters_join_the_toc():
    pages = find_pages(REPO)
    text = index_markdown(pages, course_links(), results=True, contact_sheet=False)
    assert ":glob:\n\nnotebooks/*" in text and ":glob:\n\nexercises/*" in text
    for page in pages:
        assert f"({page.source})" in text and course_links().colab(str(page.source)) in text


def test_find_pages_lists_chapters_then_homework_never_solutions():
    pages = find_pages(REPO)
    assert [str(p.source) for p in pages] == NOTEBOOKS
    assert not any(p.source.parts[0] == "solutions" for p in pages)


def test_build_refuses_a_folder_without_notebooks(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected chapter notebooks"):
        stage(tmp_path, tmp_path / "src", course_links())


def test_check_site_reports_missing_and_escaping_links(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "here.css").write_text("")
    (tmp_path / "notebooks" / "a.html").write_text(
        '<link href="../here.css"><a href="../gone.html">x</a><a href="../../secret.txt">y</a>'
        '<a href="https://example.org/">z</a><a href="#top">t</a>')
    problems = check_site(tmp_path)
    assert len(problems) == 2, problems
    assert any("gone.html" in p and "does not have" in p for p in problems)
    assert any("secret.txt" in p and "leaves the site" in p for p in problems)


def test_readme_section_stops_at_the_next_heading():
    text = "# T\n\n## Results\n\n| a |\n|---|\n\n### sub\nmore\n## Layout\nx\n"
    assert readme_section(text, "Results") == "| a |\n|---|\n\n### sub\nmore"
    assert readme_section(text, "Missing") is None


# ------------------------------------------------------------------ in a real browser
@pytest.fixture(scope="module")
def served(site):
    """The site on a local HTTP server (search needs a served site in some browsers)."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site.out)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def site_page(served):
    from test_browser_widgets import CHROMIUM, CHROMIUM_ARGS, require_browser

    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.remote = []

        def gate(route):
            if route.request.url.startswith((served, "about:", "data:")):
                route.continue_()
            else:
                page.remote.append(route.request.url)
                route.abort()

        page.route("**/*", gate)
        yield page
        browser.close()
    assert page.remote == [], f"the site tried to reach {page.remote[:3]}"


TYPESET = ("() => window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0"
           " && document.querySelectorAll('.MathJax, .MathJax_Display').length > 0")


def _typeset(page) -> tuple[int, int, bool]:
    page.wait_for_function(TYPESET, timeout=60_000)
    typeset = page.locator(".MathJax, .MathJax_Display").count()
    errors = page.locator(".MathJax_Error, merror").count()
    raw = page.evaluate(r"() => /\\(mathcal|theta|\(|\[)/.test(document.querySelector('main').innerText)")
    return typeset, errors, raw


@pytest.mark.slow
def test_browser_sidebar_and_typeset_maths_on_the_index_and_chapter_02(site_page, served):
    site_page.goto(f"{served}/index.html", wait_until="load")
    sidebar = site_page.locator(".bd-sidebar-primary a.reference.internal")
    hrefs = sidebar.evaluate_all("links => links.map(a => a.getAttribute('href'))")
    for notebook in NOTEBOOKS:
        assert str(PurePosixPath(notebook).with_suffix(".html")) in hrefs, (notebook, hrefs)
    typeset, errors, raw = _typeset(site_page)
    assert typeset >= 2 and errors == 0 and not raw, (typeset, errors, raw)
    site_page.goto(f"{served}/notebooks/02_maml.html", wait_until="load")
    typeset, errors, raw = _typeset(site_page)
    assert typeset > 10 and errors == 0 and not raw, (typeset, errors, raw)


@pytest.mark.slow
def test_browser_search_for_prototype_finds_chapter_03(site_page, served):
    site_page.goto(f"{served}/search.html?q=prototype", wait_until="load")
    site_page.wait_for_function("() => document.querySelectorAll('#search-results li a, ul.search li a').length > 0",
                                timeout=60_000)
    found = site_page.locator("#search-results li a, ul.search li a").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))")
    assert any("notebooks/03_prototypical_networks.html" in href for href in found), found


@pytest.mark.slow
def test_browser_launch_buttons_point_at_their_own_notebook(site_page, served):
    links = course_links()
    for notebook in NOTEBOOKS:
        site_page.goto(f"{served}/{PurePosixPath(notebook).with_suffix('.html')}", wait_until="load")
        hrefs = site_page.locator(".dropdown-launch-buttons a, .dropdown-download-buttons a").evaluate_all(
            "links => links.map(a => a.href)")
        colab = [h for h in hrefs if h.startswith("https://colab.research.google.com/")]
        binder = [h for h in hrefs if h.startswith("https://mybinder.org/")]
        download = [h for h in hrefs if h.endswith(".ipynb") and h.startswith(served)]
        assert colab == [links.colab(notebook)], (notebook, hrefs)
        assert len(binder) == 1 and binder[0].endswith(f"lab/tree/{notebook}"), (notebook, hrefs)
        assert download == [f"{served}/_sources/{notebook}"], (notebook, hrefs)
