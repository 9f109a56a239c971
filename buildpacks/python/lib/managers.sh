# shellcheck shell=bash
# The Python buildpack's package managers, as Heroku's Python buildpack has them:
# pip (requirements.txt), a PEP 517 project (pyproject.toml / setup.py) through
# pip, Poetry (poetry.lock) and uv (uv.lock). Each keeps a cache in CACHE_DIR keyed
# by its lock/requirement files and the Python version (wheels, uv's cache), so a
# rebuild with unchanged dependencies downloads nothing, even when the kept venv
# (venvcache.sh) cannot serve. Uses: build_dir cache_dir venv PYTHON_VERSION.

# Poetry and uv come from the package index (PIP_INDEX_URL if set), pinned, cached.
POETRY_VERSION=2.5.1
UV_VERSION=0.13.9

# package_manager BUILD_DIR: uv, poetry, pip or project; more than one lock or
# requirements file fails the build (Heroku's rule: one package manager per app).
package_manager() {
  local build_dir=$1 found=() names=()
  [[ -f $build_dir/requirements.txt ]] && found+=(pip) names+=(requirements.txt)
  [[ -f $build_dir/poetry.lock ]] && found+=(poetry) names+=(poetry.lock)
  [[ -f $build_dir/uv.lock ]] && found+=(uv) names+=(uv.lock)
  if ((${#found[@]} > 1)); then
    die "the app has ${names[*]}: keep the files of one package manager (pip, Poetry or uv) and delete the others"
  fi
  if ((${#found[@]} == 1)); then
    if [[ ${found[0]} != pip && ! -f $build_dir/pyproject.toml ]]; then
      die "${names[0]} needs its pyproject.toml, which the app lacks: commit both"
    fi
    printf '%s\n' "${found[0]}"
  else
    printf 'project\n'  # pyproject.toml or setup.py (bin/detect found one)
  fi
}

# files_key NAME...: sha256 over the Python version, the names and
# the app's files of those names (a name that is no file, such as a tool's version,
# counts by name alone), so any change gives a new key.
files_key() {
  (
    cd "$build_dir"
    printf '%s %s\n' "$PYTHON_VERSION" "$*"
    for f in "$@"; do
      [[ -f $f ]] && sha256sum "$f"
    done
    true
  ) | sha256sum | cut -d' ' -f1
}

# run_step WHAT CMD...: run CMD in the app dir, output indented; fail the build
# with one line naming WHAT and what to do.
run_step() {
  local what=$1
  shift
  (cd "$build_dir" && "$@") 2>&1 | indent || die "$what"
}

pip_step() {
  run_step "pip $1 failed (see its output above): fix the requirement it names; packages come from the package index, or PIP_INDEX_URL / PIP_EXTRA_INDEX_URL / PIP_FIND_LINKS if set" \
    "$venv/bin/python" -m pip "$@"
}

# --- pip: requirements.txt ---------------------------------------------------------

# True when requirements.txt names at least one requirement or option.
has_requirements() {
  grep -Eqv '^[[:space:]]*(#.*)?$' "$build_dir/requirements.txt"
}

# Local paths and editable installs change with the source, not with
# requirements.txt, so a wheel built from them must never be reused.
has_local_requirements() {
  grep -Eq '^[[:space:]]*(-e|--editable|\.|/|file:)' "$build_dir/requirements.txt"
}

# Every requirement/constraint file that requirements.txt may include.
requirements_files() {
  (cd "$build_dir" && find . -maxdepth 2 -type f \( -name 'requirements*.txt' \
    -o -name 'constraints*.txt' -o -path './requirements/*.txt' \) -print0 |
    LC_ALL=C sort -z | xargs -0 -r printf '%s\n')
}

install_requirements() {
  local key wheels staging started=$EPOCHREALTIME
  if ! has_requirements; then
    topic "requirements.txt lists no packages; nothing to install"
    return
  fi
  if has_local_requirements; then
    topic "Installing requirements with pip (local or editable requirements: no wheel cache)"
    pip_step install -r requirements.txt
    detail "done in $(elapsed "$started")"
    return
  fi
  mapfile -t files < <(requirements_files)
  key=$(files_key "${files[@]}")
  wheels=$cache_dir/wheels/$key
  if [[ -f $wheels/.complete ]]; then
    topic "Installing requirements with pip from the wheel cache (requirements unchanged)"
    pip_step install --no-index --find-links "$wheels" -r requirements.txt
    detail "done in $(elapsed "$started")"
    return
  fi
  topic "Installing requirements with pip"
  # Old wheel sets are for other requirements: drop them, build the new one
  # aside and publish it only once complete.
  rm -rf "$cache_dir/wheels"
  staging=$cache_dir/wheels/.staging
  mkdir -p "$staging"
  pip_step wheel --wheel-dir "$staging" -r requirements.txt
  pip_step install --no-index --find-links "$staging" -r requirements.txt
  touch "$staging/.complete"
  mv "$staging" "$wheels"
  detail "done in $(elapsed "$started")"
}

# --- pip: a PEP 517 project (pyproject.toml / setup.py) --------------------------------

# The project's [build-system] requires, one per line (PEP 518's default without);
# setuptools' backend (< 70.1) asks for wheel at build time on top of them.
build_requires() {
  "$venv/bin/python" - "$build_dir/pyproject.toml" <<'PY'
import os, sys, tomllib
reqs, backend = ["setuptools>=40.8.0"], "setuptools.build_meta:__legacy__"
if os.path.isfile(sys.argv[1]):
    with open(sys.argv[1], "rb") as f:
        system = tomllib.load(f).get("build-system")
    if isinstance(system, dict):
        if isinstance(system.get("requires"), list):
            reqs = [str(r) for r in system["requires"]]
        backend = str(system.get("build-backend", backend))
if backend.startswith("setuptools") and "wheel" not in reqs:
    reqs.append("wheel")
print("\n".join(reqs))
PY
}

# The project itself always builds from its source; its build backend and its
# dependencies come from a wheel set keyed by pyproject.toml / setup.py / setup.cfg.
install_project() {
  local key wheels staging reqs log started=$EPOCHREALTIME
  key=$(files_key pyproject.toml setup.py setup.cfg)
  wheels=$cache_dir/wheels/$key
  if [[ -f $wheels/.complete ]]; then
    topic "Installing the project with pip (dependencies from the wheel cache: pyproject.toml unchanged)"
    pip_step install --no-index --find-links "$wheels" .
    detail "done in $(elapsed "$started")"
    return
  fi
  topic "Installing the project with pip (pip install .)"
  rm -rf "$cache_dir/wheels"
  staging=$cache_dir/wheels/.staging
  mkdir -p "$staging"
  reqs=$(build_requires) || die "pyproject.toml: cannot read [build-system] (is it valid TOML?)"
  mapfile -t reqs <<<"$reqs"
  pip_step wheel --quiet --wheel-dir "$staging" "${reqs[@]}"
  pip_step wheel --quiet --wheel-dir "$staging" --find-links "$staging" .
  log=$(mktemp)
  if (cd "$build_dir" && "$venv/bin/python" -m pip install --no-index --find-links "$staging" .) >"$log" 2>&1; then
    indent <"$log"
    touch "$staging/.complete"
    mv "$staging" "$wheels"
  else
    # e.g. a backend asking for more at build time than [build-system] says: works,
    # but needs the index on every build
    detail "The wheel cache cannot build the project offline: installing from the index"
    pip_step install --find-links "$staging" .
  fi
  rm -f "$log"
  detail "done in $(elapsed "$started")"
}

# --- Poetry and uv: pinned tools in CACHE_DIR ----------------------------------------

# ensure_tool NAME VERSION: set TOOL_BIN to the tool's bin dir, installing
# NAME==VERSION into its own venv in CACHE_DIR/tools first when it is not there (the
# stack's interpreter, so the path stays valid across builds).
ensure_tool() {
  local name=$1 version=$2 dir=$cache_dir/tools/$1-$2 started=$EPOCHREALTIME
  TOOL_BIN=$dir/bin
  if [[ -x $dir/bin/$name ]]; then
    topic "Using $name $version (cached)"
    return
  fi
  topic "Installing $name $version"
  rm -rf "$cache_dir/tools/$name-"*
  mkdir -p "$cache_dir/tools"
  /usr/bin/python3 -m venv --without-pip "$dir"
  if ! pip_into "$dir" install --quiet --no-compile "$name==$version" 2>&1 | indent; then
    rm -rf "$dir"
    die "installing $name $version with pip failed (see above): it comes from the package index (PIP_INDEX_URL if set)"
  fi
  detail "done in $(elapsed "$started")"
}

# Poetry: "poetry sync --only main" into the app's venv. Poetry asks the index for
# each package's files even when its cache has them: an unchanged rebuild restores
# the venv instead (venvcache.sh) and runs no Poetry at all.
install_poetry() {
  local started=$EPOCHREALTIME
  ensure_tool poetry "$POETRY_VERSION"
  topic "Installing dependencies with Poetry (poetry sync --only main)"
  run_step "poetry sync failed (see its output above): fix pyproject.toml or run 'poetry lock' and commit poetry.lock" \
    env POETRY_VIRTUALENVS_CREATE=false VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" \
    POETRY_CACHE_DIR="$cache_dir/poetry" POETRY_NO_INTERACTION=1 \
    "$TOOL_BIN/poetry" sync --only main --no-ansi --compile
  detail "done in $(elapsed "$started")"
}

# uv: "uv sync --locked" into the app's venv with uv's cache in CACHE_DIR; uv.lock
# names every file, so with the key of its last sync uv runs --offline from its cache
# (when the kept venv of venvcache.sh does not serve already).
install_uv() {
  local key stamp offline=() started=$EPOCHREALTIME
  ensure_tool uv "$UV_VERSION"
  key=$(files_key uv.lock pyproject.toml "uv $UV_VERSION")
  stamp=$cache_dir/uv-synced
  if [[ -f $stamp && $(<"$stamp") == "$key" && -d $cache_dir/uv ]]; then
    offline=(--offline)
    topic "Installing dependencies with uv from its cache (uv.lock unchanged: uv sync --locked --offline)"
  else
    topic "Installing dependencies with uv (uv sync --locked)"
  fi
  rm -f "$stamp"
  # --inexact keeps the venv's pip; the venv is new, so nothing else is extraneous
  run_step "uv sync failed (see its output above): fix pyproject.toml or run 'uv lock' and commit uv.lock" env UV_PROJECT_ENVIRONMENT="$venv" UV_PYTHON="$venv/bin/python" \
    UV_PYTHON_DOWNLOADS=never UV_NO_MANAGED_PYTHON=1 UV_CACHE_DIR="$cache_dir/uv" \
    UV_LINK_MODE=copy VIRTUAL_ENV="$venv" "$TOOL_BIN/uv" sync --locked --no-default-groups \
    --inexact --compile-bytecode --no-progress --color never "${offline[@]}"
  printf '%s' "$key" >"$stamp"
  detail "done in $(elapsed "$started")"
}
