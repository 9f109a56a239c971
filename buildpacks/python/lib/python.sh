# shellcheck shell=bash
# The Python buildpack's helpers for the interpreter, the venv and the web process
# (bin/compile and bin/release source this after ../../lib/common.sh).

# The stack's offline wheelhouse (paas/build/stackwheels.py): gunicorn packed from
# Debian's files, Debian's pip and setuptools wheels.
WHEELHOUSE=${PAAS_WHEELHOUSE:-/usr/share/paas/wheels}
DEBIAN_WHEELS=/usr/share/python-wheels
# unpacks those pure wheels into a venv without pip's ~1-3 s per install
WHEELINSTALL=$(dirname "${BASH_SOURCE[0]}")/wheelinstall.py

# --- the Python version ------------------------------------------------------------

# requested_python BUILD_DIR: "VERSION FILE" when runtime.txt (python-3.11.2) or
# .python-version (3.11 or 3.11.2; the first line that is not a comment) asks for
# one, as Heroku reads them (runtime.txt first); nothing otherwise. A malformed
# request fails the build.
requested_python() {
  local build_dir=$1 line version
  if [[ -f $build_dir/runtime.txt ]]; then
    line=$(tr -d '[:space:]' <"$build_dir/runtime.txt")
    [[ $line =~ ^python-(3\.[0-9]+(\.[0-9]+)?)$ ]] ||
      die "runtime.txt: '${line:0:40}' is not a Python version: write e.g. python-3.11 (or use .python-version)"
    printf '%s runtime.txt\n' "${BASH_REMATCH[1]}"
    return
  fi
  if [[ -f $build_dir/.python-version ]]; then
    while IFS= read -r line || [[ -n $line ]]; do
      line=${line//[[:space:]]/}
      [[ -z $line || $line == \#* ]] && continue
      version=$line
      break
    done <"$build_dir/.python-version"
    [[ ${version:-} =~ ^3\.[0-9]+(\.[0-9]+)?$ ]] ||
      die ".python-version: '${version:0:40}' is not a Python version: write e.g. 3.11"
    printf '%s .python-version\n' "$version"
  fi
}

# The stack's interpreters as "FULL_VERSION PATH" lines (/usr/bin/python3.N).
stack_pythons() {
  local bin
  for bin in /usr/bin/python3.[0-9]*; do
    [[ $bin =~ /python3\.[0-9]+$ && -x $bin ]] || continue
    printf '%s %s\n' "$("$bin" -c 'import platform; print(platform.python_version())')" "$bin"
  done | sort -V
}

# select_python BUILD_DIR: set PYTHON_BIN, PYTHON_VERSION and PYTHON_ORIGIN, or fail
# with one line naming the versions the stack has.
select_python() {
  local request version file full bin available=()
  request=$(requested_python "$1")
  read -r version file <<<"$request"
  while read -r full bin; do
    available+=("$full")
    if [[ -z ${version:-} && $bin == "$(readlink -f /usr/bin/python3)" ]] ||
      [[ -n ${version:-} && ($full == "$version" || ${full%.*} == "$version") ]]; then
      PYTHON_BIN=$bin PYTHON_VERSION=$full
    fi
  done < <(stack_pythons)
  ((${#available[@]})) || die "python3 is not installed in the stack image"
  if [[ -z ${version:-} ]]; then
    if [[ -z ${PYTHON_BIN:-} ]]; then  # no /usr/bin/python3: the newest
      read -r PYTHON_VERSION PYTHON_BIN < <(stack_pythons | tail -n 1)
    fi
    PYTHON_ORIGIN="the stack's default"
    return
  fi
  if [[ -z ${PYTHON_BIN:-} ]]; then
    local minors=("${available[@]%.*}")
    die "$file asks for Python $version, which this stack does not have: it has Python ${available[*]} (write ${minors[*]} in $file, or remove it)"
  fi
  PYTHON_ORIGIN="$file asks for $version"
}

# --- the venv --------------------------------------------------------------------------

# The wheel of NAME (pip, setuptools) in the wheelhouse, else Debian's.
stack_wheel() {
  local whl
  for whl in "$WHEELHOUSE/$1"-*.whl "$DEBIAN_WHEELS/$1"-*.whl; do
    [[ -f $whl ]] && { printf '%s\n' "$whl"; return 0; }
  done
  return 1
}

# pip_into VENV ARGS...: run the stack's pip for VENV, which has none yet: Debian's
# pip with --python (pip >= 22.3), else pip straight from its wheel.
pip_into() {
  local venv=$1 wheel
  shift
  if /usr/bin/python3 -c 'import sys, pip
sys.exit(tuple(int(p) for p in pip.__version__.split(".")[:2]) < (22, 3))' 2>/dev/null; then
    /usr/bin/python3 -m pip --python "$venv/bin/python" "$@"
    return
  fi
  wheel=$(stack_wheel pip) || return 1
  "$venv/bin/python" "$wheel/pip" "$@"
}

# create_venv PYTHON VENV: a venv without the system site-packages (the app's own
# requirements always win) with pip unpacked from the stack's wheel: ~0.4 s, where
# ensurepip takes ~3 s.
create_venv() {
  local python=$1 venv=$2 wheel
  "$python" -m venv --without-pip "$venv"
  if wheel=$(stack_wheel pip) && "$venv/bin/python" "$WHEELINSTALL" "$wheel" >/dev/null; then
    return 0
  fi
  "$venv/bin/python" -m ensurepip --default-pip >/dev/null
}

# has_module VENV NAME: NAME is importable by the venv's interpreter.
has_module() {
  "$1/bin/python" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec(sys.argv[1]) is None)' "$2"
}

# --- the web process -----------------------------------------------------------------------

# find_wsgi_entrypoint BUILD_DIR: print "module:callable" for the first WSGI
# callable found, or nothing. A callable counts when it is a top-level
# assignment ("app = ...", "app: Flask = ...") or a top-level def.
find_wsgi_entrypoint() {
  local build_dir=$1 file module name names
  for file in wsgi.py app.py main.py; do
    [[ -f $build_dir/$file ]] || continue
    module=${file%.py}
    if [[ $module == wsgi ]]; then names="application app"; else names="app application"; fi
    for name in $names; do
      if grep -Eq "^(${name}[[:space:]]*(:[^=]*)?=[^=]|(async[[:space:]]+)?def[[:space:]]+${name}[[:space:]]*\\()" \
        "$build_dir/$file"; then
        printf '%s:%s\n' "$module" "$name"
        return 0
      fi
    done
  done
}

# The default web command for a WSGI entry point. "python" is the venv's
# interpreter because .profile.d/python.sh puts $HOME/.venv/bin first on PATH;
# "python -m gunicorn" works wherever the app directory is (console scripts
# in .venv/bin carry the build-time path in their shebang).
web_command() {
  # shellcheck disable=SC2016 # $PORT and $WEB_CONCURRENCY expand at container start
  printf 'python -m gunicorn --bind 0.0.0.0:$PORT --workers ${WEB_CONCURRENCY:-2} --access-logfile - %s\n' "$1"
}

# needs_gunicorn BUILD_DIR: the app runs gunicorn: a Procfile command names it, or
# there is no Procfile and a WSGI entry point makes it the default web process.
needs_gunicorn() {
  local build_dir=$1
  if [[ -f $build_dir/Procfile ]]; then
    grep -Eq '^[[:space:]]*[A-Za-z0-9_-]+[[:space:]]*:.*(^|[^A-Za-z0-9_.-])gunicorn([^A-Za-z0-9_-]|$)' \
      "$build_dir/Procfile"
  else
    [[ -n $(find_wsgi_entrypoint "$build_dir") ]]
  fi
}

# ensure_gunicorn BUILD_DIR VENV: when the app runs gunicorn but its requirements do
# not bring it, install the stack's (from the wheelhouse, offline) into the venv, so
# "gunicorn" and "python -m gunicorn" are the venv's, never the system's. Sets
# GUNICORN_ADDED=1 when it installed it.
ensure_gunicorn() {
  local build_dir=$1 venv=$2 wheel started=$EPOCHREALTIME
  GUNICORN_ADDED=0
  needs_gunicorn "$build_dir" || return 0
  has_module "$venv" gunicorn && return 0
  GUNICORN_ADDED=1
  if [[ -d $WHEELHOUSE ]] && wheel=$(compgen -G "$WHEELHOUSE/gunicorn-*.whl" | head -n 1); then
    topic "Installing $(basename "$wheel" | cut -d- -f1-2 | tr - ' ') from the stack (the app does not list gunicorn)"
    "$venv/bin/python" "$WHEELINSTALL" --from "$WHEELHOUSE" --compile gunicorn \
      --compile pkg_resources gunicorn 2>&1 | indent ||
      die "installing the stack's gunicorn failed: add gunicorn to the app's requirements"
  else
    topic "Installing gunicorn from the package index (the app does not list it; this stack has no wheelhouse)"
    detail "Rebuild the stack with 'paas image:bootstrap --stack' to install it offline"
    "$venv/bin/python" -m pip install --quiet gunicorn 2>&1 | indent ||
      die "installing gunicorn failed: add gunicorn to the app's requirements"
  fi
  detail "done in $(elapsed "$started")"
}
