# shellcheck shell=bash
# Helpers shared by bin/compile and bin/release of the Python buildpack.

# Heroku-style progress output: "-----> step" and "       detail".
topic() { printf -- '-----> %s\n' "$*"; }
detail() { printf '       %s\n' "$*"; }
# Indent a command's output as detail lines (sed only ever sees tool output).
indent() { sed -u 's/^/       /'; }
# " !     message" on stderr, then exit 1.
die() {
  printf ' !     %s\n' "$@" >&2
  exit 1
}

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
