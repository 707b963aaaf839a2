"""Build the course website with Sphinx + myst-nb + sphinx-book-theme, from the stored outputs.

    scripts/site                      # -> _build/site/index.html
    scripts/site --out public         # another output folder (replaced)

Stages a source folder that mirrors the repository (notebooks/, exercises/, docs/img/), so a
page's path is its notebook's path and the theme's launch buttons (Colab, Binder, download)
name that notebook; generates index.md (course map with each notebook's objective and its
Colab/Binder links) and results.md (the README's Results section); then runs sphinx-build
with book/conf.py. Notebooks are never executed (``nb_execution_mode = "off"``).

In the staged copies each widget output keeps only its stored PNG (the widget view and the
notebook's widget state are dropped: no widget JavaScript from a CDN) and is followed by a
line saying how to run it live; the download button serves the original notebook. The
Colab set-up cell (tag ``remove-cell``) is left out of the pages. MathJax 2 comes from
``jupyter-server-mathjax``, copied into the site: equations typeset offline. Search is
Sphinx's own index (works from a local server or from disk).

Afterwards every relative link of every page must resolve inside the site (``check_site``);
a broken one fails the build.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from tools.course_links import REPO, CourseLinks, course_links

__all__ = ["Page", "SiteReport", "find_pages", "build_site", "check_site", "internal_links", "readme_section",
           "main"]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
SECTIONS = [("notebooks", "Chapters"), ("exercises", "Homework")]
LINK_ATTRIBUTES = {"a": "href", "img": "src", "link": "href", "script": "src", "source": "src"}
CONF_DIR = REPO / "book"
MATHJAX_FONTS = """MathJax.Hub.Config({"HTML-CSS": {availableFonts: [], preferredFont: null,
                                   webFont: "STIX-Web", imageFont: null}});
MathJax.Ajax.loadComplete("[MathJax]/config/course-fonts.js");
"""
# jupyter-server-mathjax ships only the STIX-Web web fonts: without course-fonts, MathJax asks
# for its TeX fonts, fails to load them and shows "[Math Processing Error]" (for a prime, say).
LIVE_NOTE = ("*This figure is a snapshot of an interactive widget. To move its controls, run the notebook: "
             "the Colab or Binder button at the top of this page, or `scripts/course` in a clone.*")


@dataclass(frozen=True)
class Page:
    """One notebook of the site: ``source`` (repo-relative .ipynb), ``target`` (.html)."""

    source: PurePosixPath
    title: str
    summary: str
    section: str

    @property
    def target(self) -> PurePosixPath:
        return self.source.with_suffix(".html")


@dataclass
class SiteReport:
    """What ``build_site`` wrote."""

    out: Path
    pages: list[Page]
    widget_figures: dict[str, int]
    seconds: float
    warnings: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ reading the notebooks
def _plain(markdown: str) -> str:
    """Markdown emphasis marks dropped, whitespace collapsed (maths and code kept)."""
    return " ".join(re.sub(r"\*{1,2}(\S[^*]*?)\*{1,2}", r"\1", markdown).split())


def _title_and_summary(notebook: dict, fallback: str) -> tuple[str, str]:
    """First markdown heading, and a one-line summary: the first learning objective
    (``**Learning objectives.** ... you can`` + ``1. ...``) or else the first paragraph."""
    title, paragraph = fallback, ""
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        blocks = [b.strip() for b in "".join(cell.get("source", "")).split("\n\n") if b.strip()]
        for i, block in enumerate(blocks):
            if block.startswith("#"):
                if title == fallback:
                    title = block.splitlines()[0].lstrip("#").strip()
                continue
            if title == fallback:
                continue
            if "objectives" in block.lower() and i + 1 < len(blocks) and blocks[i + 1].startswith("1."):
                first = re.split(r"\n\s*2\.", blocks[i + 1])[0][2:].rstrip(";. ")
                return title, _plain("After this chapter you can " + first + ".")
            if not paragraph and not block.startswith(("|", "!", "<", "```", "1.", "- ", "* ", "**")):
                paragraph = _plain(block)
        if title != fallback and paragraph:
            break
    return title, paragraph


def find_pages(repo: Path) -> list[Page]:
    """Chapters (``notebooks/*.ipynb``) then homework (``exercises/*.ipynb``), sorted; never solutions/."""
    pages = []
    for folder, section in SECTIONS:
        for path in sorted((repo / folder).glob("*.ipynb")):
            notebook = json.loads(path.read_text(encoding="utf-8"))
            title, summary = _title_and_summary(notebook, path.stem.replace("_", " "))
            pages.append(Page(PurePosixPath(folder, path.name), title, summary, section))
    return pages


def readme_section(readme: str, title: str) -> str | None:
    """The markdown of ``## title`` in ``readme`` (up to the next ``## `` heading), or None."""
    match = re.search(rf"^## {re.escape(title)}[ \t]*\n(.*?)(?=^## |\Z)", readme, flags=re.M | re.S)
    return match.group(1).strip() if match else None


# ------------------------------------------------------------------ staging
def static_notebook(notebook: dict) -> tuple[dict, int]:
    """A copy for the site: widget views dropped (their PNG stays), each followed by LIVE_NOTE."""
    nb = copy.deepcopy(notebook)
    nb.get("metadata", {}).pop("widgets", None)
    cells, figures = [], 0
    for cell in nb.get("cells", []):
        cells.append(cell)
        shown = 0
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            data = output.get("data", {})
            if WIDGET_VIEW in data:
                del data[WIDGET_VIEW]
                shown += "image/png" in data
        if shown:
            figures += shown
            cells.append({"cell_type": "markdown", "id": f"{cell.get('id', 'cell')}-live"[:64], "metadata": {},
                          "source": LIVE_NOTE})
    nb["cells"] = cells
    return nb, figures


def _link_row(page: Page, links: CourseLinks) -> str:
    summary = page.summary.replace("|", "\\|")
    source = str(page.source)
    return (f"| [{page.title}]({page.source}) | {summary} | [Colab]({links.colab(source)}) "
            f"· [Binder]({links.binder(source)}) |")


def index_markdown(pages: list[Page], links: CourseLinks, results: bool, contact_sheet: bool) -> str:
    lines = [
        "# metalearn-lite",
        "",
        "A hands-on course on **meta-learning** (\"learning to learn\") in Python and PyTorch, on a laptop CPU:",
        "MAML, prototypical networks and neural processes, built step by step on a small package.",
        "A *learner* maps a data set $\\mathcal D$ to a predictor $f_\\phi$; a *meta-learner* maps a",
        "distribution of tasks $p(\\mathcal T)$ to a learner: $\\theta^\\star = \\arg\\min_\\theta \\,",
        "\\mathbb E_{\\mathcal T \\sim p(\\mathcal T)}\\big[\\mathcal L_{\\mathcal T}(\\phi_{\\mathcal T}(\\theta))\\big]$.",
        "",
        "Each page is an executed notebook. Run one yourself with the buttons at the top of its page",
        "(Colab, Binder, or download the `.ipynb`), or in a clone with `scripts/course`.",
        "Interactive widgets appear here as the figure they drew.",
        "",
    ]
    for _, section in SECTIONS:
        members = [p for p in pages if p.section == section]
        if not members:
            continue
        lines += [f"## {section}", "", "| notebook | what you do | run it |", "|---|---|---|"]
        lines += [_link_row(p, links) for p in members]
        lines.append("")
    if results:
        lines += ["## Results", "", "[Reproduction tables and measured speeds](results.md), each with the command "
                  "that produced it.", ""]
    if contact_sheet:
        lines += ["## The Glyphs data set", "", "![Glyphs contact sheet](docs/img/glyphs_contact_sheet.png)", ""]
    lines += ["```{toctree}", ":hidden:", ":caption: Chapters", ":glob:", "", "notebooks/*", "```", ""]
    if any(p.section == "Homework" for p in pages):
        lines += ["```{toctree}", ":hidden:", ":caption: Homework", ":glob:", "", "exercises/*", "```", ""]
    if results:
        lines += ["```{toctree}", ":hidden:", ":caption: Results", "", "results", "```", ""]
    return "\n".join(lines)


def _mathjax_static() -> Path:
    try:
        import jupyter_server_mathjax
    except ImportError as exc:
        raise RuntimeError("the site needs jupyter-server-mathjax (course extra) for offline equations") from exc
    static = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (static / "MathJax.js").is_file():
        raise RuntimeError(f"MathJax.js is missing from {static}")
    return static


def stage(repo: Path, src: Path, links: CourseLinks) -> tuple[list[Page], dict[str, int]]:
    """Write the Sphinx sources of ``repo``'s site into ``src`` (a new folder)."""
    pages = find_pages(repo)
    if not any(p.section == "Chapters" for p in pages):
        raise FileNotFoundError(f"expected chapter notebooks in {repo / 'notebooks'}, found none")
    figures = {}
    for page in pages:
        notebook = json.loads((repo / page.source).read_text(encoding="utf-8"))
        static, figures[str(page.source)] = static_notebook(notebook)
        target = src / page.source
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(static, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    images = repo / "docs" / "img"
    if images.is_dir():
        shutil.copytree(images, src / "docs" / "img")
    readme = repo / "README.md"
    results = readme_section(readme.read_text(encoding="utf-8"), "Results") if readme.is_file() else None
    if results:
        (src / "results.md").write_text("# Results\n\n" + results + "\n", encoding="utf-8")
    contact = (images / "glyphs_contact_sheet.png").is_file()
    (src / "index.md").write_text(index_markdown(pages, links, bool(results), contact), encoding="utf-8")
    shutil.copytree(_mathjax_static(), src / "_static" / "mathjax",
                    ignore=shutil.ignore_patterns("*.md", "__pycache__", "*.py"))
    (src / "_static" / "mathjax" / "config" / "course-fonts.js").write_text(MATHJAX_FONTS, encoding="utf-8")
    return pages, figures


def build_site(out: Path, repo: Path | None = None, jobs: str = "auto") -> SiteReport:
    """Build the site into ``out`` (replaced). Raises RuntimeError if sphinx-build fails."""
    repo = Path(repo or REPO).resolve()
    out = Path(out).resolve()
    links = course_links(repo if (repo / "pyproject.toml").is_file() else REPO)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="metalearn-site-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        pages, figures = stage(repo, src, links)
        if out.exists():
            shutil.rmtree(out)
        command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-j", jobs, "-c", str(CONF_DIR),
                   "-d", str(Path(tmp) / "doctrees"), str(src), str(out)]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
                   METALEARN_SITE_STATIC=str(src / "_static"))
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise RuntimeError(f"sphinx-build failed ({result.returncode}):\n{result.stderr[-4000:]}")
    for page in pages:  # the download button serves the notebook as it is in the repository
        shutil.copy2(repo / page.source, out / "_sources" / page.source)
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    return SiteReport(out, pages, figures, time.monotonic() - start, warnings)


# ------------------------------------------------------------------ the link check
def _resolve(link: str, page_dir: PurePosixPath) -> tuple[PurePosixPath, str] | None:
    """Site-relative path and fragment of a relative link, or None for external ones."""
    parts = urlsplit(link)
    if parts.scheme or parts.netloc or link.startswith(("#", "/", "data:", "mailto:", "javascript:")):
        return None
    if not parts.path:
        return None
    stack: list[str] = list(page_dir.parts)
    for piece in unquote(parts.path).split("/"):
        if piece in ("", "."):
            continue
        if piece == "..":
            if not stack:
                return PurePosixPath(".."), parts.fragment  # outside the site
            stack.pop()
        else:
            stack.append(piece)
    return PurePosixPath(*stack) if stack else PurePosixPath("."), parts.fragment


def internal_links(page_html: str, page: PurePosixPath) -> list[tuple[str, PurePosixPath]]:
    """``[(link as written, site-relative path)]`` for every relative href/src of a page."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page_html, "html.parser")
    found = []
    for tag, attribute in LINK_ATTRIBUTES.items():
        for node in soup.find_all(tag):
            link = node.get(attribute)
            resolved = _resolve(link, page.parent) if link else None
            if resolved is not None:
                found.append((link, resolved[0]))
    return found


def check_site(out: Path) -> list[str]:
    """Problems of a built site: relative href/src that leave it or name no file."""
    out = Path(out)
    problems = []
    for page in sorted(out.rglob("*.html")):
        relative = PurePosixPath(page.relative_to(out).as_posix())
        if relative.parts[0] in ("_static", "_sources"):
            continue  # third-party files shipped as they are (MathJax's own test pages)
        for link, path in internal_links(page.read_text(encoding="utf-8"), relative):
            if path.parts and path.parts[0] == "..":
                problems.append(f"{relative}: link {link!r} leaves the site")
            elif not (out / path).exists():
                problems.append(f"{relative}: link {link!r} names {path}, which the site does not have")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/site", description="Build the course website (Sphinx, offline).")
    parser.add_argument("--out", type=Path, default=Path("_build/site"), help="output folder (replaced)")
    parser.add_argument("--repo", type=Path, default=None, help="repository root (default: this checkout)")
    parser.add_argument("--jobs", default="auto", help="sphinx-build -j (default: auto)")
    args = parser.parse_args(argv)
    report = build_site(args.out, args.repo, args.jobs)
    problems = check_site(report.out)
    for problem in problems:
        print(f"broken link: {problem}", file=sys.stderr)
    for warning in report.warnings:
        print(warning, file=sys.stderr)
    chapters = sum(p.section == "Chapters" for p in report.pages)
    print(f"site: {chapters} chapters, {len(report.pages) - chapters} homework pages, "
          f"{sum(report.widget_figures.values())} widget figures, {len(report.warnings)} Sphinx warnings, "
          f"built in {report.seconds:.0f} s -> {report.out / 'index.html'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
