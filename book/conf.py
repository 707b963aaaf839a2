"""Sphinx configuration of the course website (built by scripts/site, tools/site.py).

tools/site.py stages the sources next to a copy of this file's folder: the chapter and homework
notebooks (stored outputs, never re-executed), index.md (course map, from the notebooks'
titles and objectives) and results.md (the README's Results section). Everything the pages
load is in the site itself (theme assets, search index, MathJax 2 from jupyter-server-mathjax),
so it reads offline, from disk or from a local server.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tools.course_links import course_links  # noqa: E402

links = course_links(REPO)

project = "metalearn-lite"
author = "the metalearn-lite authors"
copyright = "MIT licence"  # noqa: A001
release = links.version
html_title = "metalearn-lite: a hands-on course on meta-learning"

extensions = ["myst_nb"]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_dmath_double_inline = True  # $$...$$ inside a paragraph, as Jupyter renders it (chapter 02 has some)
myst_heading_anchors = 3
# MyST's MathJax tweak (tex2jax_ignore on sections + a MathJax 3 processHtmlClass) would stop
# MathJax 2 from typesetting anything: leave MathJax 2 to find \( \) and \[ \] itself.
myst_update_mathjax = False
nb_execution_mode = "off"          # the stored outputs, which nbval keeps current
nb_ipywidgets_js = {}              # widgets show their stored PNG; no widget JS from a CDN
nb_merge_streams = True
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type", "misc.highlighting_failure"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

html_theme = "sphinx_book_theme"
# tools/site.py copies MathJax into the staged sources' _static and names that folder here
# (a relative entry would be read from book/, not from the staged sources).
html_static_path = [os.environ["METALEARN_SITE_STATIC"]] if os.environ.get("METALEARN_SITE_STATIC") else []
html_sourcelink_suffix = ""        # _sources/notebooks/x.ipynb: the download button's file
html_last_updated_fmt = None
html_theme_options = {
    "repository_url": links.repository,
    "repository_branch": links.ref,
    "path_to_docs": "",
    "use_repository_button": True,
    "use_download_button": True,
    "use_source_button": False,
    "launch_buttons": {
        "colab_url": "https://colab.research.google.com",
        "binderhub_url": "https://mybinder.org",
        "notebook_interface": "jupyterlab",
    },
    "show_toc_level": 2,
    "home_page_in_toc": True,
}

# MathJax 2 from jupyter-server-mathjax (copied into _static/mathjax): no CDN.
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe,course-fonts"
mathjax2_config = {"tex2jax": {"processEscapes": True}}
