"""Where the course lives online, read from ``pyproject.toml`` (the one place to change it).

``[project.urls] Repository`` is the GitHub repository; the git ref used by the Colab
set-up cell and by the launch buttons is the tag ``v<version>`` of ``[project] version``,
so a notebook opened from (or installing) a release gets the package of that release.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class CourseLinks:
    repository: str  # https://github.com/OWNER/NAME
    version: str

    @property
    def ref(self) -> str:
        return f"v{self.version}"

    @property
    def owner_name(self) -> str:
        prefix = "https://github.com/"
        if not self.repository.startswith(prefix) or self.repository.rstrip("/").count("/") != 4:
            raise ValueError(f"[project.urls] Repository must be https://github.com/OWNER/NAME, got {self.repository!r}")
        return self.repository[len(prefix):].rstrip("/")

    def pip_url(self) -> str:
        """What pip installs the package of this version from (a git URL at the release tag)."""
        return f"git+{self.repository.rstrip('/')}.git@{self.ref}"

    def colab(self, notebook: str) -> str:
        """Open ``notebook`` (repo-relative, e.g. notebooks/00_welcome.ipynb) in Google Colab."""
        return f"https://colab.research.google.com/github/{self.owner_name}/blob/{self.ref}/{quote(notebook)}"

    def binder(self, notebook: str) -> str:
        """Open ``notebook`` in JupyterLab on mybinder.org (built from binder/)."""
        return (f"https://mybinder.org/v2/gh/{self.owner_name}/{self.ref}"
                f"?urlpath={quote('lab/tree/' + notebook, safe='')}")

    def download(self, notebook: str) -> str:
        """The raw .ipynb file, to save and open in any Jupyter."""
        return f"https://raw.githubusercontent.com/{self.owner_name}/{self.ref}/{quote(notebook)}"

    def nbgitpuller(self, hub: str, notebook: str = "notebooks/00_welcome.ipynb") -> str:
        """A JupyterHub link that clones/updates the course into the user's home, then opens ``notebook``."""
        repo_dir = self.owner_name.split("/")[1]
        query = (f"repo={quote(self.repository, safe='')}&branch={quote(self.ref)}"
                 f"&urlpath={quote(f'lab/tree/{repo_dir}/{notebook}', safe='')}")
        return f"{hub.rstrip('/')}/hub/user-redirect/git-pull?{query}"


def course_links(repo: Path = REPO) -> CourseLinks:
    """The links of the checkout at ``repo`` (ValueError if pyproject lacks the fields)."""
    project = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    url = project.get("urls", {}).get("Repository")
    if not url:
        raise ValueError(f"{repo / 'pyproject.toml'}: expected [project.urls] Repository = \"https://github.com/OWNER/NAME\"")
    links = CourseLinks(url, project["version"])
    links.owner_name  # noqa: B018  (validates the URL)
    return links


# ------------------------------------------------------------------ README badges
BADGES_START = "<!-- launch-badges: start (python -m tools.course_links --write-readme) -->"
BADGES_END = "<!-- launch-badges: end -->"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
BINDER_BADGE = "https://mybinder.org/badge_logo.svg"


def notebooks(repo: Path = REPO) -> list[str]:
    """Repo-relative paths of the chapters then the homework (exercises/), sorted."""
    return [p.relative_to(repo).as_posix() for folder in ("notebooks", "exercises")
            for p in sorted((repo / folder).glob("*.ipynb"))]


def badges_block(repo: Path = REPO) -> str:
    """The README's table of Colab/Binder badges, one row per notebook, between the markers."""
    links = course_links(repo)
    rows = [BADGES_START, "", "| notebook | Colab | Binder |", "|---|---|---|"]
    for notebook in notebooks(repo):
        rows.append(f"| `{notebook}` | [![Open in Colab]({COLAB_BADGE})]({links.colab(notebook)}) "
                    f"| [![Binder]({BINDER_BADGE})]({links.binder(notebook)}) |")
    return "\n".join(rows + ["", BADGES_END])


def readme_with_badges(readme: str, repo: Path = REPO) -> str:
    """``readme`` with the text between the badge markers replaced (ValueError if they are missing)."""
    start, end = readme.find(BADGES_START), readme.find(BADGES_END)
    if start < 0 or end < start:
        raise ValueError(f"README.md lacks the markers {BADGES_START!r} ... {BADGES_END!r}")
    return readme[:start] + badges_block(repo) + readme[end + len(BADGES_END):]


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m tools.course_links",
                                     description="Colab/Binder badges in README.md, one per notebook.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write-readme", action="store_true", help="rewrite the badge table in README.md")
    group.add_argument("--check-readme", action="store_true", help="exit 1 if the badge table is out of date")
    args = parser.parse_args(argv)
    path = REPO / "README.md"
    text = path.read_text(encoding="utf-8")
    wanted = readme_with_badges(text)
    if args.check_readme:
        if wanted != text:
            print("README.md: the launch-badge table is out of date: python -m tools.course_links --write-readme",
                  file=sys.stderr)
            return 1
        return 0
    if wanted != text:
        tmp = path.with_suffix(".md.tmp")
        tmp.write_text(wanted, encoding="utf-8")
        tmp.replace(path)
    print(f"README.md: badges for {len(notebooks())} notebooks")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
