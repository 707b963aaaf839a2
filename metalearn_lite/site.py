"""Build the course website: the executed chapter notebooks as static HTML pages.

    python -m metalearn_lite.site --out _build/site      # or: scripts/site --out DIR

Why nbconvert and not Jupyter Book: nbconvert (already installed with JupyterLab) works
offline, needs no Node build, and renders the *stored* outputs the notebook tests
(nbval) keep current. Each page is nbconvert's "lab" HTML with images embedded; widget
outputs show their static ``image/png`` fallback (``CourseWidget._repr_mimebundle_``):
the notebook's widget state is dropped so no widget JavaScript is pulled from a CDN.

Site layout (mirrors the repository, so relative links keep working)::

    index.html                 course map: chapters, homework, figures
    notebooks/<chapter>.html   one page per notebooks/*.ipynb
    exercises/<hw>.html        one page per exercises/*.ipynb (never solutions/)
    docs/img/...               copied figures (contact sheet, widget screenshots)

Links between notebooks (``02_maml.ipynb#x``) become ``02_maml.html#x``; other relative
links to files of the repository are copied into the site so that they resolve.
"""
from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit, urlunsplit

from metalearn_lite.atomic import atomic_write_text

__all__ = ["Page", "SiteReport", "find_pages", "build_site", "check_site", "internal_links", "main"]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
SECTIONS = [("notebooks", "Chapters"), ("exercises", "Homework")]
REQUIRE_JS = re.compile(r'<script src="[^"]*require(?:\.min)?\.js"[^>]*>\s*</script>\s*')
LINK_ATTRIBUTES = {"a": "href", "img": "src", "link": "href", "script": "src", "source": "src"}


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
    """What ``build_site`` wrote: pages, copied files, widget outputs shown as PNG."""

    out: Path
    pages: list[Page]
    copied: list[PurePosixPath]
    widget_fallbacks: dict[str, int]
    mathjax: str = "local"  # "local": MathJax copied into the site (works offline); else the CDN URL used


MATHJAX_DIR = PurePosixPath("mathjax")
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe,course-fonts"  # the first two ship with jupyter-server-mathjax
# jupyter-server-mathjax ships only the STIX-Web web fonts: without this, MathJax asks for
# its TeX fonts, fails to load them and shows "[Math Processing Error]" (for a prime, say).
_MATHJAX_FONTS = """MathJax.Hub.Config({"HTML-CSS": {availableFonts: [], preferredFont: null,
                                   webFont: "STIX-Web", imageFont: null}});
MathJax.Ajax.loadComplete("[MathJax]/config/course-fonts.js");
"""
MATHJAX_CDN = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/latest.js?config=TeX-AMS_CHTML-full,Safe"


def _mathjax_source() -> Path | None:
    """MathJax 2's files from the ``jupyter-server-mathjax`` package, or None if it is missing."""
    try:
        import jupyter_server_mathjax
    except ImportError:
        return None
    static = Path(jupyter_server_mathjax.__file__).parent / "static"
    return static if (static / "MathJax.js").is_file() else None


def default_repo() -> Path:
    """The checkout this package lives in (editable install), else the current folder."""
    here = Path(__file__).resolve().parents[1]
    return here if (here / "notebooks").is_dir() else Path.cwd()


def _plain(markdown: str) -> str:
    """Markdown emphasis and code marks dropped, whitespace collapsed."""
    return " ".join(re.sub(r"[*`]{1,2}(\S[^*`]*?)[*`]{1,2}", r"\1", markdown).split())


def _title_and_summary(notebook: dict, fallback: str) -> tuple[str, str]:
    """First markdown heading, and a one-line summary: the first learning objective
    (``**Learning objectives.** ... you can`` + ``1. ...``) or else the first paragraph."""
    title, paragraph = fallback, ""
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        text = "".join(cell.get("source", ""))
        blocks = [b.strip() for b in text.split("\n\n") if b.strip()]
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
    """Chapters (``notebooks/*.ipynb``) and homework (``exercises/*.ipynb``), sorted."""
    pages = []
    for folder, section in SECTIONS:
        for path in sorted((repo / folder).glob("*.ipynb")):
            notebook = json.loads(path.read_text(encoding="utf-8"))
            title, summary = _title_and_summary(notebook, path.stem.replace("_", " "))
            pages.append(Page(PurePosixPath(folder, path.name), title, summary, section))
    return pages


def _relative(target: PurePosixPath, start: PurePosixPath) -> str:
    """``target`` relative to the folder ``start`` (both site-relative)."""
    if target.parent == start:
        return target.name
    up = len(start.parts)
    return "/".join([".."] * up + list(target.parts)) if up else str(target)


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


def _strip_widget_state(notebook) -> int:
    """Drop widget state (no CDN widget JS); count the widget outputs left as PNG."""
    notebook.metadata.pop("widgets", None)
    count = 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = output.get("data", {})
            if WIDGET_VIEW in data:
                del data[WIDGET_VIEW]
                count += "image/png" in data
    return count


def _navigation(page: Page, pages: list[Page]) -> str:
    same = [p for p in pages if p.section == page.section]
    i = same.index(page)
    here = page.target.parent
    items = [f'<a href="{_relative(PurePosixPath("index.html"), here)}">Course map</a>']
    if i > 0:
        items.append(f'<a href="{_relative(same[i - 1].target, here)}">&larr; {html.escape(same[i - 1].title)}</a>')
    if i + 1 < len(same):
        items.append(f'<a href="{_relative(same[i + 1].target, here)}">{html.escape(same[i + 1].title)} &rarr;</a>')
    return ('<nav class="course-nav" style="font-family: sans-serif; padding: 8px 16px; '
            'border-bottom: 1px solid #ddd;">' + " &middot; ".join(items) + "</nav>")


def _rewrite_links(page_html: str, page: Page, repo: Path, converted: set[PurePosixPath],
                   copies: set[PurePosixPath]) -> str:
    """``x.ipynb`` -> ``x.html`` for converted notebooks; note other repo files to copy."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page_html, "html.parser")
    changed = False
    for tag, attribute in LINK_ATTRIBUTES.items():
        for node in soup.find_all(tag):
            link = node.get(attribute)
            resolved = _resolve(link, page.target.parent) if link else None
            if resolved is None:
                continue
            path, _fragment = resolved
            if path.suffix == ".ipynb" and path in converted:
                parts = urlsplit(link)
                node[attribute] = urlunsplit(parts._replace(path=parts.path[: -len(".ipynb")] + ".html"))
                changed = True
            elif path.parts and path.parts[0] != ".." and (repo / path).is_file():
                copies.add(path)
    return str(soup) if changed else page_html


RESULTS_PAGE = PurePosixPath("results.html")


def readme_section(readme: str, title: str) -> str | None:
    """The markdown of ``## title`` in ``readme`` (up to the next ``## `` heading), or None."""
    match = re.search(rf"^## {re.escape(title)}[ \t]*\n(.*?)(?=^## |\Z)", readme, flags=re.M | re.S)
    return match.group(1).strip() if match else None


def _results_html(markdown: str) -> str:
    """The README's Results section (reproduction tables, with the commands behind them) as a page."""
    import mistune  # nbconvert's markdown renderer

    body = mistune.create_markdown(plugins=["table"])(markdown)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Results: metalearn-lite</title>
<style>
body {{ font-family: sans-serif; max-width: 960px; margin: 2em auto; padding: 0 1em; line-height: 1.5; }}
table {{ border-collapse: collapse; margin: 1em 0; }} th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; }}
pre {{ background: #f5f5f5; padding: 0.6em; overflow-x: auto; }}
</style></head>
<body>
<p><a href="index.html">&larr; course map</a></p>
<h1>Results</h1>
{body}
</body></html>
"""


def _index_html(pages: list[Page], figures: list[PurePosixPath], results: bool = False) -> str:
    rows = []
    for _, section in SECTIONS:
        members = [p for p in pages if p.section == section]
        if not members:
            continue
        rows.append(f"<h2>{section}</h2>\n<ol class=\"course-map\">")
        for page in members:
            summary = f"<br><span class=\"summary\">{html.escape(page.summary)}</span>" if page.summary else ""
            rows.append(f'<li><a href="{page.target}">{html.escape(page.title)}</a> '
                        f"<code>{html.escape(page.source.name)}</code>{summary}</li>")
        rows.append("</ol>")
    if results:
        rows.append(f'<h2>Results</h2>\n<p><a href="{RESULTS_PAGE}">Reproduction tables and measured speeds</a>, '
                    "each with the command that produced it.</p>")
    if figures:
        rows.append("<h2>Figures</h2>")
        for figure in figures:
            caption = html.escape(figure.stem.replace("_", " ").replace("-", " "))
            rows.append(f'<figure><a href="{figure}"><img src="{figure}" alt="{caption}" '
                        f'style="max-width: 640px; width: 100%;"></a><figcaption>{caption}</figcaption></figure>')
    body = "\n".join(rows)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>metalearn-lite: a hands-on course on meta-learning</title>
<style>
body {{ font-family: sans-serif; max-width: 880px; margin: 2em auto; padding: 0 1em; line-height: 1.5; }}
.summary {{ color: #555; font-size: 0.95em; }} li {{ margin-bottom: 0.7em; }}
figcaption {{ color: #555; font-size: 0.9em; }}
</style></head>
<body>
<h1>metalearn-lite</h1>
<p>A hands-on course on meta-learning (MAML, prototypical networks, neural processes)
for Python and PyTorch. Each chapter below is the executed notebook; interactive widgets
appear as the figure they drew (open the notebook in JupyterLab to move them).</p>
{body}
</body></html>
"""


def build_site(out: Path, repo: Path | None = None) -> SiteReport:
    """Write the site into ``out`` (replaced if it exists) from ``repo``'s stored notebooks.

    Returns a ``SiteReport``; raises FileNotFoundError when ``repo`` has no notebooks.
    """
    import nbformat
    from nbconvert import HTMLExporter

    repo = Path(repo or default_repo()).resolve()
    pages = find_pages(repo)
    if not any(p.section == "Chapters" for p in pages):
        raise FileNotFoundError(f"expected chapter notebooks in {repo / 'notebooks'}, found none")
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    exporter = HTMLExporter(template_name="lab", embed_images=True)
    mathjax = _mathjax_source()
    if mathjax is not None:  # math renders offline (a student's laptop, a course intranet)
        shutil.copytree(mathjax, out / MATHJAX_DIR, ignore=shutil.ignore_patterns("*.md", "__pycache__"))
        _write_page(out / MATHJAX_DIR / "config" / "course-fonts.js", _MATHJAX_FONTS)
    converted = {p.source for p in pages}
    copies: set[PurePosixPath] = set()
    fallbacks: dict[str, int] = {}
    for page in pages:
        source = repo / page.source
        notebook = nbformat.read(source, as_version=4)
        fallbacks[str(page.source)] = _strip_widget_state(notebook)
        resources = {"metadata": {"name": page.title, "path": str(source.parent)}}
        exporter.mathjax_url = (MATHJAX_CDN if mathjax is None else
                                f"{_relative(MATHJAX_DIR / 'MathJax.js', page.target.parent)}?config={MATHJAX_CONFIG}")
        body, _ = exporter.from_notebook_node(notebook, resources=resources)
        body = _rewrite_links(body, page, repo, converted, copies)
        head, sep, rest = body.partition("<main>") if "<main>" in body else body.partition("<body")
        if sep == "<main>":
            body = head + _navigation(page, pages) + sep + rest
        else:  # insert after the opening <body ...> tag
            tag_end = rest.index(">") + 1
            body = head + sep + rest[:tag_end] + _navigation(page, pages) + rest[tag_end:]
        body = REQUIRE_JS.sub("", body, count=1)  # only widget JS needs require.js; none is shipped
        _write_page(out / page.target, body)
    copied = []
    images = repo / "docs" / "img"
    if images.is_dir():
        shutil.copytree(images, out / "docs" / "img")
        copied += [PurePosixPath(p.relative_to(repo).as_posix()) for p in sorted(images.rglob("*")) if p.is_file()]
    for path in sorted(copies - set(copied)):
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / path, out / path)
        copied.append(path)
    figures = [p for p in copied if p.suffix.lower() in (".png", ".svg", ".jpg", ".jpeg")
               and p.parts[:2] == ("docs", "img")]
    readme = repo / "README.md"
    results = readme_section(readme.read_text(encoding="utf-8"), "Results") if readme.is_file() else None
    if results:
        _write_page(out / RESULTS_PAGE, _results_html(results))
    _write_page(out / "index.html", _index_html(pages, figures, results=bool(results)))
    return SiteReport(out, pages, copied, fallbacks, "local" if mathjax is not None else MATHJAX_CDN)


def _write_page(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    path.chmod(0o644)  # a web page is world-readable (the atomic temp file was 0600)


def check_site(out: Path) -> list[str]:
    """Problems of a built site: relative href/src that leave it or name no file."""
    out = Path(out)
    problems = []
    for page in sorted(out.rglob("*.html")):
        relative = PurePosixPath(page.relative_to(out).as_posix())
        for link, path in internal_links(page.read_text(encoding="utf-8"), relative):
            if path.parts and path.parts[0] == "..":
                problems.append(f"{relative}: link {link!r} leaves the site")
            elif not (out / path).exists():
                problems.append(f"{relative}: link {link!r} names {path}, which the site does not have")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/site", description="Build the course website (static HTML).")
    parser.add_argument("--out", type=Path, default=Path("_build/site"), help="output folder (replaced)")
    parser.add_argument("--repo", type=Path, default=None, help="repository root (default: this checkout)")
    args = parser.parse_args(argv)
    report = build_site(args.out, args.repo)
    problems = check_site(report.out)
    for problem in problems:
        print(f"broken link: {problem}", file=sys.stderr)
    chapters = sum(p.section == "Chapters" for p in report.pages)
    print(f"site: {chapters} chapters, {len(report.pages) - chapters} homework pages, "
          f"{sum(report.widget_fallbacks.values())} widget figures, {len(report.copied)} files copied, "
          f"MathJax {'local (offline)' if report.mathjax == 'local' else 'from ' + report.mathjax} "
          f"-> {report.out.resolve() / 'index.html'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
