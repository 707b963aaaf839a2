"""constraints.txt, environment.yml and pyproject.toml must agree.

- constraints.txt: exact ``name==version`` pins of the whole tested environment;
- environment.yml: conda ``python=X.Y`` + ``pip`` + a pip section with top-level pins;
- pyproject.toml: version *ranges* for the dependencies and the extras.

Each ``*_problems`` function returns a list of human-readable mismatches; the tests
assert that list is empty, and that a deliberately broken copy is caught.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
CONSTRAINTS = REPO / "constraints.txt"
ENVIRONMENT = REPO / "environment.yml"
PYPROJECT = REPO / "pyproject.toml"

TORCH_PIN = "2.13.0"
# The top-level packages environment.yml must pin (the course's direct needs).
TOP_LEVEL = [
    "torch", "numpy", "matplotlib", "scikit-image", "tqdm", "ipywidgets",
    "jupyterlab", "ipykernel", "nbval", "pytest",
]


# --------------------------------------------------------------------------- parsers
def parse_constraints(text: str) -> dict[str, str]:
    """``{canonical name: version}`` from ``name==version`` lines; comments skipped.

    Raises ValueError on a line that is not an exact pin, or on a duplicate name.
    """
    pins: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==" or "*" in specs[0].version:
            raise ValueError(f"constraints line {lineno} must be 'name==version', got {raw!r}")
        name = canonicalize_name(req.name)
        if name in pins:
            raise ValueError(f"constraints line {lineno}: {req.name} pinned twice")
        pins[name] = specs[0].version
    return pins


def parse_environment_yml(text: str) -> dict[str, list[str]]:
    """A tiny parser for our environment.yml layout (no PyYAML needed).

    Returns ``{"name": [name], "channels": [...], "conda": [...], "pip": [...]}``:
    ``conda`` holds the plain dependency strings (``python=3.11``, ``pip``), ``pip``
    the entries of the ``- pip:`` subsection. Expected layout::

        name: metalearn-lite
        channels:
          - conda-forge
        dependencies:
          - python=3.11
          - pip
          - pip:
              - torch==2.13.0
    """
    out: dict[str, list[str]] = {"name": [], "channels": [], "conda": [], "pip": []}
    section = None  # "channels" | "dependencies"
    in_pip = False
    pip_indent = -1
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        stripped = line.strip()
        if indent == 0:
            key, _, value = stripped.partition(":")
            in_pip = False
            section = key if key in ("channels", "dependencies") else None
            if key == "name":
                out["name"].append(value.strip())
            elif section is None:
                raise ValueError(f"environment.yml line {lineno}: unexpected key {key!r}")
            continue
        if not stripped.startswith("- "):
            raise ValueError(f"environment.yml line {lineno}: expected a '- item', got {raw!r}")
        item = stripped[2:].strip().strip("'\"")
        if section == "channels":
            out["channels"].append(item)
        elif section == "dependencies":
            if in_pip and indent > pip_indent:
                out["pip"].append(item)
            elif item == "pip:":
                in_pip, pip_indent = True, indent
            else:
                in_pip = False
                out["conda"].append(item)
        else:
            raise ValueError(f"environment.yml line {lineno}: item outside a section: {raw!r}")
    return out


def parse_pyproject(text: str) -> dict:
    return tomllib.loads(text)


# ----------------------------------------------------------------------- the checks
def environment_problems(env: dict[str, list[str]], pins: dict[str, str]) -> list[str]:
    """Mismatches between environment.yml's pip pins and constraints.txt."""
    problems = []
    env_pins = {}
    for entry in env["pip"]:
        if entry.startswith("-"):
            continue  # options such as "-e .[test]"
        req = Requirement(entry)
        specs = list(req.specifier)
        name = canonicalize_name(req.name)
        if len(specs) != 1 or specs[0].operator != "==":
            problems.append(f"environment.yml: {entry!r} is not an exact '==' pin")
            continue
        env_pins[name] = specs[0].version
        if name not in pins:
            problems.append(f"environment.yml pins {name}=={specs[0].version}, constraints.txt has no pin")
        elif pins[name] != specs[0].version:
            problems.append(
                f"environment.yml pins {name}=={specs[0].version}, constraints.txt pins {name}=={pins[name]}"
            )
    for name in TOP_LEVEL:
        if name not in env_pins:
            problems.append(f"environment.yml does not pin top-level package {name}")
    if "-e .[test]" not in env["pip"]:
        problems.append(f"environment.yml's pip section must install the project with '-e .[test]', got {env['pip']}")
    if "pip" not in env["conda"]:
        problems.append(f"environment.yml must list conda package 'pip', got {env['conda']}")
    return problems


def python_problems(env: dict[str, list[str]], pyproject: dict) -> list[str]:
    """environment.yml's ``python=X.Y`` must satisfy pyproject's requires-python."""
    pythons = [d for d in env["conda"] if d.split("=")[0].strip() == "python"]
    if len(pythons) != 1:
        return [f"environment.yml must list python exactly once, got {pythons}"]
    version = pythons[0].split("=", 1)[1].lstrip("=").strip().rstrip(".*")
    requires = SpecifierSet(pyproject["project"]["requires-python"])
    if Version(version + ".0") not in requires:
        return [f"environment.yml has python={version}, pyproject requires-python is {requires}"]
    return []


def range_problems(pyproject: dict, pins: dict[str, str], extras=("test", "course")) -> list[str]:
    """Every dependency (and those of ``extras``) is pinned, and the pin is in range."""
    project = pyproject["project"]
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project.get("optional-dependencies", {}).get(extra, [])
    problems = []
    for entry in requirements:
        req = Requirement(entry)
        if req.marker is not None and not req.marker.evaluate({"python_version": "3.11"}):
            continue
        name = canonicalize_name(req.name)
        if name not in pins:
            problems.append(f"pyproject needs {entry!r}, constraints.txt has no pin for {name}")
        elif not req.specifier.contains(pins[name], prereleases=True):
            problems.append(f"constraints.txt pins {name}=={pins[name]}, outside pyproject's {entry!r}")
    return problems


def torch_problems(env: dict[str, list[str]], pins: dict[str, str], pyproject: dict) -> list[str]:
    problems = []
    if pins.get("torch") != TORCH_PIN:
        problems.append(f"constraints.txt must pin torch=={TORCH_PIN}, got {pins.get('torch')}")
    if f"torch=={TORCH_PIN}" not in env["pip"]:
        problems.append(f"environment.yml must pin torch=={TORCH_PIN}, got {[e for e in env['pip'] if 'torch' in e]}")
    torch_reqs = [Requirement(d) for d in pyproject["project"]["dependencies"] if Requirement(d).name == "torch"]
    if len(torch_reqs) != 1 or TORCH_PIN not in torch_reqs[0].specifier:
        problems.append(f"pyproject's torch range must admit {TORCH_PIN}, got {[str(r) for r in torch_reqs]}")
    return problems


def all_problems(constraints_text: str, environment_text: str, pyproject_text: str) -> list[str]:
    pins = parse_constraints(constraints_text)
    env = parse_environment_yml(environment_text)
    pyproject = parse_pyproject(pyproject_text)
    return (
        environment_problems(env, pins)
        + python_problems(env, pyproject)
        + range_problems(pyproject, pins)
        + torch_problems(env, pins, pyproject)
    )


# ---------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def texts() -> tuple[str, str, str]:
    return CONSTRAINTS.read_text(), ENVIRONMENT.read_text(), PYPROJECT.read_text()


def test_the_three_files_agree(texts):
    assert all_problems(*texts) == []


def test_constraints_are_exact_pins_without_local_labels(texts):
    pins = parse_constraints(texts[0])
    assert len(pins) > 50, "constraints.txt must pin the whole environment, not only top-level packages"
    assert pins["torch"] == TORCH_PIN  # not 2.13.0+cpu: the same file must work off the CPU index
    assert all("+" not in v for v in pins.values()), {n: v for n, v in pins.items() if "+" in v}
    assert canonicalize_name("metalearn-lite") not in pins, "the project itself must not be pinned"


def test_parser_reads_our_environment_yml(texts):
    env = parse_environment_yml(texts[1])
    assert env["name"] == ["metalearn-lite"]
    assert env["conda"][0].startswith("python=")
    assert "pip" in env["conda"]
    assert "torch==2.13.0" in env["pip"] and "-e .[test]" in env["pip"]
    try:
        import yaml  # only a cross-check of the hand parser; not a dependency
    except ImportError:
        return
    data = yaml.safe_load(texts[1])
    conda = [d for d in data["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in data["dependencies"] if isinstance(d, dict))
    assert (env["conda"], env["pip"], env["channels"]) == (conda, pip, data["channels"])


def test_mismatched_environment_pin_is_detected(texts):
    constraints, environment, pyproject = texts
    pins = parse_constraints(constraints)
    broken = environment.replace(f"numpy=={pins['numpy']}", "numpy==1.26.4")
    assert broken != environment
    problems = all_problems(constraints, broken, pyproject)
    assert any("numpy==1.26.4" in p and f"numpy=={pins['numpy']}" in p for p in problems), problems


def test_pin_outside_pyproject_range_is_detected(texts):
    constraints, environment, pyproject = texts
    broken = pyproject.replace('"torch>=2.4,<3"', '"torch>=2.4,<2.5"')
    assert broken != pyproject
    problems = all_problems(constraints, environment, broken)
    assert any("torch==2.13.0" in p and "outside" in p for p in problems), problems
    assert any("must admit 2.13.0" in p for p in problems), problems


def test_missing_pin_and_wrong_torch_are_detected(texts):
    constraints, environment, pyproject = texts
    no_tqdm = "\n".join(l for l in constraints.splitlines() if not l.lower().startswith("tqdm=="))
    problems = all_problems(no_tqdm, environment, pyproject)
    assert any("constraints.txt has no pin for tqdm" in p for p in problems), problems
    other_torch = constraints.replace("torch==2.13.0", "torch==2.12.0")
    problems = all_problems(other_torch, environment, pyproject)
    assert any("must pin torch==2.13.0, got 2.12.0" in p for p in problems), problems


def test_python_outside_requires_python_is_detected(texts):
    constraints, environment, pyproject = texts
    broken = environment.replace("python=3.11", "python=3.9")
    assert broken != environment
    problems = all_problems(constraints, broken, pyproject)
    assert any("python=3.9" in p for p in problems), problems


def installed_dependency_closure(project: str = "metalearn-lite", extras=("test", "course")) -> set[str]:
    """Canonical names of every installed package ``project[extras]`` needs, recursively."""
    from importlib import metadata

    found: set[str] = set()
    walked: set[tuple[str, tuple[str, ...]]] = set()  # a package may be needed with extras
    todo = [(project, tuple(extras))]
    while todo:
        name, wanted_extras = todo.pop()
        if (name, wanted_extras) in walked:
            continue
        walked.add((name, wanted_extras))
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue  # not installed here (pip would have said so); nothing to walk
        for entry in requires:
            req = Requirement(entry)
            if req.marker is not None and not any(
                req.marker.evaluate({"extra": extra}) for extra in (*wanted_extras, "")
            ):
                continue
            dep = canonicalize_name(req.name)
            found.add(dep)
            todo.append((dep, tuple(sorted(req.extras))))
    found.discard(canonicalize_name(project))
    return found


def test_every_installed_dependency_is_pinned(texts):
    """A dependency added to pyproject (or pulled in by one) must be pinned too:
    regenerate constraints.txt with the command in its header."""
    pins = parse_constraints(texts[0])
    needed = installed_dependency_closure()
    assert {"torch", "numpy", "jupyterlab", "nbval", "jinja2"} <= needed  # the walk reaches transitive deps
    assert sorted(needed - set(pins)) == []


def test_bad_constraints_lines_are_rejected():
    with pytest.raises(ValueError, match="must be 'name==version'"):
        parse_constraints("numpy>=2\n")
    with pytest.raises(ValueError, match="pinned twice"):
        parse_constraints("numpy==2.4.6\nNumPy==2.4.6\n")


# ------------------------------------------------------------- set-up scripts use them
SCRIPTS = [REPO / "scripts" / "_setup.sh", REPO / "scripts" / "course", REPO / "scripts" / "test", REPO / ".ci" / "run"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_setup_scripts_parse(script):
    import shutil
    import subprocess

    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash not available")
    result = subprocess.run([bash, "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_setup_installs_from_the_constraints_and_ci_runs_scripts_test():
    setup = (REPO / "scripts" / "_setup.sh").read_text()
    assert '-c constraints.txt -e ".[test]"' in setup
    assert "bash scripts/test" in (REPO / ".ci" / "run").read_text()
    for name in ("course", "test"):
        assert 'source "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"' in (REPO / "scripts" / name).read_text()
        assert (REPO / "scripts" / name).stat().st_mode & 0o111, f"scripts/{name} must be executable"
