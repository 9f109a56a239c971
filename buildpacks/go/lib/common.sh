# shellcheck shell=bash
# Helpers of the Go buildpack's bin/compile and bin/release.

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
# elapsed START: "done in 1.2s" since START, an earlier $EPOCHREALTIME.
elapsed() {
  local start=$1 now
  now=$EPOCHREALTIME
  awk -v a="$start" -v b="$now" 'BEGIN { printf "done in %.1fs\n", b - a }'
}

# The file compile writes for release: the default web command's binary (bin/NAME).
GO_WEB_FILE=.go-buildpack/web

# default_web BUILD_DIR: "bin/NAME" recorded by compile, or nothing.
default_web() {
  local file=$1/$GO_WEB_FILE web
  [[ -f $file ]] || return 0
  web=$(<"$file")
  # compile wrote it, but the build dir is the app's: print only a plain binary path
  if [[ $web =~ ^bin/[A-Za-z0-9._+-]+$ ]]; then
    printf '%s\n' "$web"
  fi
}
