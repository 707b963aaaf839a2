# Shared set-up for scripts/course and scripts/test (sourced, not run).
#
# ensure_env: creates the project's virtual environment (.venv) on first use and
# installs the package with the pinned dependencies:
#     python -m pip install -c constraints.txt -e ".[test]"
# It skips the install when the stamp file in the venv records the same hash of
# pyproject.toml + constraints.txt + python version + repo path, so a second run
# starts in about a second. Nothing is installed or registered outside .venv.
#
# Environment knobs: PYTHON (interpreter for a new venv; default python3.11, then
# python3), METALEARN_LITE_VENV (venv folder; default <repo>/.venv).

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${METALEARN_LITE_VENV:-$REPO/.venv}"
VENV_PY="$VENV/bin/python"
STAMP="$VENV/.metalearn-lite-setup.sha256"

say() { printf '[metalearn-lite] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# The first interpreter >= 3.11 among $PYTHON, python3.11, python3, python (the pins
# in constraints.txt need 3.11+: numpy 2.4, scipy 1.17 and matplotlib 3.11 dropped 3.10).
pick_python() {
    local candidates=(python3.11 python3 python3.12 python3.13 python) c
    [[ -n "${PYTHON:-}" ]] && candidates=("$PYTHON")
    for c in "${candidates[@]}"; do
        if command -v "$c" >/dev/null 2>&1 \
            && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
            echo "$c"
            return 0
        fi
    done
    return 1
}

setup_hash() {
    "$VENV_PY" - "$REPO" <<'PY'
import hashlib, pathlib, sys
repo = pathlib.Path(sys.argv[1])
h = hashlib.sha256()
for name in ("pyproject.toml", "constraints.txt"):
    h.update(name.encode() + b"\0" + (repo / name).read_bytes() + b"\0")
h.update(sys.version.encode() + b"\0" + str(repo).encode())
print(h.hexdigest())
PY
}

# The pinned torch, on Linux from PyTorch's CPU index first: PyPI's Linux wheel is the CUDA
# build (gigabytes of nvidia packages a CPU course never uses). When that index does not
# answer within a few seconds, pip's default index (and pip's own configuration) is used.
# Says which build it got. Arguments: extra pip options.
TORCH_CPU_INDEX="${METALEARN_LITE_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
install_torch() {
    local pin have
    pin="$(grep -m1 -i '^torch==' "$REPO/constraints.txt")" || die "constraints.txt has no torch== pin"
    have="$("$VENV_PY" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true)"
    if [[ "torch==$have" == "$pin" ]]; then
        return 0
    fi
    local index_args=() source="the default package index"
    if [[ "$(uname -s)" == Linux ]]; then
        if "$VENV_PY" - "$TORCH_CPU_INDEX" <<'PY' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1].rstrip("/") + "/torch/", timeout=8).close()
PY
        then
            index_args=(--index-url "$TORCH_CPU_INDEX")
            source="PyTorch's CPU index ($TORCH_CPU_INDEX)"
        else
            say "PyTorch's CPU index ($TORCH_CPU_INDEX) did not answer: using the default package index"
        fi
    fi
    say "installing $pin from $source"
    "$VENV_PY" -m pip install "$@" ${index_args[@]+"${index_args[@]}"} "$pin" \
        || die "could not install $pin from $source (see above)"
    say "got $("$VENV_PY" -c 'import torch; c = torch.version.cuda; print(f"torch {torch.__version__}, " + (f"a CUDA {c} build" if c else "the CPU build"))')"
}

ensure_env() {
    [[ -f "$REPO/pyproject.toml" && -f "$REPO/constraints.txt" ]] \
        || die "pyproject.toml or constraints.txt missing in $REPO: is this a metalearn-lite checkout?"

    if [[ -e "$VENV" ]] && ! "$VENV_PY" -c 'import sys' >/dev/null 2>&1; then
        [[ -f "$VENV/pyvenv.cfg" ]] \
            || die "$VENV exists but is not a virtual environment; move it away or set METALEARN_LITE_VENV"
        say "the virtual environment in $VENV is broken (its Python no longer runs): recreating it"
        rm -rf "$VENV"
    fi

    if [[ ! -e "$VENV" ]]; then
        local py
        py="$(pick_python)" || die "need Python >= 3.11 (3.11 recommended): none of ${PYTHON:-python3.11 python3 python3.12 python3.13 python} was found at 3.11 or newer. Install Python 3.11, or set PYTHON=/path/to/python3.11"
        say "creating a virtual environment in $VENV with $py ($("$py" --version 2>&1))"
        if ! "$py" -m venv "$VENV"; then
            rm -rf "$VENV"
            die "'$py -m venv' failed. On Debian/Ubuntu install the venv module: sudo apt install python3-venv (or python3.11-venv)"
        fi
    fi

    local version
    version="$("$VENV_PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    [[ "$version" == "3.11" ]] \
        || say "warning: $VENV uses Python $version; constraints.txt is tested on 3.11 and may not resolve elsewhere"

    local want have=""
    want="$(setup_hash)"
    [[ -f "$STAMP" ]] && have="$(cat "$STAMP")"
    if [[ "$want" == "$have" ]]; then
        say "environment up to date ($VENV)"
        return 0
    fi

    say "installing metalearn-lite and its pinned dependencies into $VENV"
    say "(first time: a few minutes and ~1 GB on disk, mostly torch; later runs skip this)"
    local pip_opts=(--disable-pip-version-check)
    if [[ -n "${CI:-}" ]]; then
        pip_opts+=(--progress-bar off --no-input)
    fi
    install_torch "${pip_opts[@]}"
    (cd "$REPO" && "$VENV_PY" -m pip install "${pip_opts[@]}" -c constraints.txt -e ".[test]") \
        || die "pip install failed (see above). Nothing outside $VENV was changed; rerun after fixing, or delete $VENV to start over"
    # Real student responses for chapter 06 (the Swedish SAT sample ships inside the irtorch
    # wheel, MIT). Only its data files are used, never its code, so skip its heavy dependencies.
    (cd "$REPO" && "$VENV_PY" -m pip install "${pip_opts[@]}" --no-deps -c constraints.txt irtorch) \
        || say "note: could not install irtorch; chapter 06 falls back to the student simulator"
    "$VENV_PY" -c 'import metalearn_lite, torch' \
        || die "the install finished but 'import metalearn_lite, torch' fails in $VENV"
    printf '%s\n' "$want" > "$STAMP.tmp" && mv "$STAMP.tmp" "$STAMP"
    say "environment ready ($VENV)"
}
