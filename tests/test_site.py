"""The course website (metalearn_lite/site.py, scripts/site): built from the stored
notebooks, every chapter has a page, every relative link resolves, widgets show their
static PNG fallback, and links between notebooks point at the HTML pages."""
from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath

import pytest

from metalearn_lite.site import build_site, check_site, find_pages, internal_links

REPO = Path(__file__).resolve().parents[1]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
CHAPTERS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if not CHAPTERS:
        pytest.skip("no chapter notebooks under notebooks/ yet")
    out = tmp_path_factory.mktemp("site") / "public"
    return build_site(out, REPO)


def test_every_chapter_has_a_page_linked_from_the_index(site):
    index = (site.out / "index.html").read_text(encoding="utf-8")
    for notebook in CHAPTERS:
        page = site.out / "notebooks" / f"{notebook.stem}.html"
        assert page.is_file(), f"no page for {notebook.name}"
        text = page.read_text(encoding="utf-8")
        assert "jp-Notebook" in text and 'class="course-nav"' in text
        assert f'href="notebooks/{notebook.stem}.html"' in index, f"index does not link {notebook.name}"
    assert not (site.out / "solutions").exists(), "solutions must never be published"


def test_every_internal_link_resolves(site):
    assert check_site(site.out) == []
    links = [link for page in site.out.rglob("*.html")
             for link in internal_links(page.read_text(encoding="utf-8"),
                                        PurePosixPath(page.relative_to(site.out).as_posix()))]
    assert len(links) >= 2 * len(CHAPTERS), "each chapter page links at least the map and a neighbour"


def test_figures_are_copied_and_shown_on_the_index(site):
    index = (site.out / "index.html").read_text(encoding="utf-8")
    for image in sorted((REPO / "docs" / "img").rglob("*.png")):
        relative = image.relative_to(REPO).as_posix()
        assert (site.out / relative).read_bytes() == image.read_bytes()
        assert f'src="{relative}"' in index


def test_widget_outputs_show_their_png_fallback(site):
    """The exact PNG stored next to each widget view appears in the page as an <img>."""
    checked = 0
    for notebook in CHAPTERS:
        stored = json.loads(notebook.read_text(encoding="utf-8"))
        text = (site.out / "notebooks" / f"{notebook.stem}.html").read_text(encoding="utf-8")
        assert "application/vnd.jupyter.widget-state+json" not in text, "widget state must be dropped"
        for cell in stored["cells"]:
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if WIDGET_VIEW in data and "image/png" in data:
                    png = "".join(data["image/png"]).replace("\n", "")
                    assert re.search(f'<img [^>]*src="data:image/png;base64,{re.escape(png)}"', text), (
                        f"{notebook.name}: a widget's static figure is missing from its page")
                    checked += 1
    assert checked == sum(site.widget_fallbacks[f"notebooks/{n.name}"] for n in CHAPTERS)


# ------------------------------------------------------------- a small synthetic course
def _notebook(markdown: str, outputs: list | None = None, widgets: bool = False) -> dict:
    cells = [{"cell_type": "markdown", "id": "m", "metadata": {}, "source": markdown}]
    if outputs is not None:
        cells.append({"cell_type": "code", "execution_count": 1, "id": "c", "metadata": {},
                      "outputs": outputs, "source": "w"})
    metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}
    if widgets:
        metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2,
                                                                               "version_minor": 0}}
    return {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}


PNG_1x1 = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


@pytest.fixture
def tiny_repo(tmp_path):
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    (repo / "docs" / "img").mkdir(parents=True)
    (repo / "bench").mkdir()
    (repo / "bench" / "table.py").write_text("print('table')\n")
    (repo / "docs" / "img" / "sheet.png").write_bytes(b"\x89PNG fake")
    widget_output = {"output_type": "display_data", "metadata": {}, "data": {
        WIDGET_VIEW: {"model_id": "abc", "version_major": 2, "version_minor": 0},
        "image/png": PNG_1x1, "text/plain": "SupportSizeWidget(children=...)"}}
    first = _notebook("# 00 · First\n\nIntro line.\n\nSee [the next one](01_b.ipynb#part-2), "
                      "[the bench](../bench/table.py) and ![sheet](../docs/img/sheet.png).",
                      [widget_output], widgets=True)
    second = _notebook("# 01 · Second\n\nBack to [the first](./00_a.ipynb).")
    (repo / "notebooks" / "00_a.ipynb").write_text(json.dumps(first))
    (repo / "notebooks" / "01_b.ipynb").write_text(json.dumps(second))
    return repo


def test_links_between_notebooks_become_html_and_repo_files_are_copied(tiny_repo, tmp_path):
    report = build_site(tmp_path / "out", tiny_repo)
    assert [p.title for p in report.pages] == ["00 · First", "01 · Second"]
    assert report.pages[0].summary == "Intro line."
    first = (report.out / "notebooks" / "00_a.html").read_text(encoding="utf-8")
    second = (report.out / "notebooks" / "01_b.html").read_text(encoding="utf-8")
    assert 'href="01_b.html#part-2"' in first and "01_b.ipynb" not in first
    assert 'href="./00_a.html"' in second
    assert (report.out / "bench" / "table.py").read_text() == "print('table')\n"
    assert re.search(f'<img [^>]*src="data:image/png;base64,{re.escape(PNG_1x1)}"', first)  # widget fallback
    assert "widget-state" not in first and "require.min.js" not in first
    assert report.widget_fallbacks == {"notebooks/00_a.ipynb": 1, "notebooks/01_b.ipynb": 0}
    assert check_site(report.out) == []
    assert (report.out / "index.html").stat().st_mode & 0o044 == 0o044, "pages must be world-readable"


def test_check_site_reports_missing_and_escaping_links(tiny_repo, tmp_path):
    report = build_site(tmp_path / "out", tiny_repo)
    (report.out / "bench" / "table.py").unlink()
    page = report.out / "notebooks" / "01_b.html"
    page.write_text(page.read_text(encoding="utf-8").replace("</main>", '<a href="../../secret.txt">x</a></main>'))
    problems = check_site(report.out)
    assert any("bench/table.py" in p and "does not have" in p for p in problems), problems
    assert any("secret.txt" in p and "leaves the site" in p for p in problems), problems


def test_find_pages_lists_chapters_then_homework_never_solutions():
    pages = find_pages(REPO)
    sections = [p.section for p in pages]
    assert sections == sorted(sections, key=["Chapters", "Homework"].index)
    assert [p.source.name for p in pages if p.section == "Chapters"] == [n.name for n in CHAPTERS]
    assert not any(p.source.parts[0] == "solutions" for p in pages)


def test_build_refuses_a_folder_without_notebooks(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected chapter notebooks"):
        build_site(tmp_path / "out", tmp_path)


def test_math_is_typeset_from_the_site_itself_not_a_cdn(site):
    """Chapter pages load MathJax from the site (relative path), so equations render offline."""
    assert site.mathjax == "local", "jupyter-server-mathjax (a course dependency) should be installed"
    assert (site.out / "mathjax" / "MathJax.js").is_file()
    for notebook in CHAPTERS:
        text = (site.out / "notebooks" / f"{notebook.stem}.html").read_text(encoding="utf-8")
        sources = re.findall(r'<script[^>]*src="([^"]+)"', text)
        assert "../mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe,course-fonts" in sources, sources
        assert not [s for s in sources if "://" in s or s.startswith("//")], f"{notebook.name} loads remote scripts"
        configs = re.search(r"MathJax\.js\?config=([^\"&]+)", text).group(1).split(",")
        assert all((site.out / "mathjax" / "config" / f"{c}.js").is_file() for c in configs), configs


def test_results_page_carries_the_readme_reproduction_tables(site):
    from metalearn_lite.site import readme_section

    results = readme_section((REPO / "README.md").read_text(encoding="utf-8"), "Results")
    assert results and "| method |" in results
    page = (site.out / "results.html").read_text(encoding="utf-8")
    index = (site.out / "index.html").read_text(encoding="utf-8")
    assert 'href="results.html"' in index
    assert page.count("<table>") == results.count("\n|---") + results.startswith("|---"), "one HTML table per markdown table"
    first_row = next(line for line in results.splitlines() if line.startswith("| ProtoNet"))
    assert first_row.split("|")[1].strip() in page
    assert "bench/reproduce_fewshot.py" in page, "the commands behind the numbers are shown"


def test_readme_section_stops_at_the_next_heading():
    from metalearn_lite.site import readme_section

    text = "# T\n\n## Results\n\n| a |\n|---|\n\n### sub\nmore\n## Layout\nx\n"
    assert readme_section(text, "Results") == "| a |\n|---|\n\n### sub\nmore"
    assert readme_section(text, "Missing") is None
