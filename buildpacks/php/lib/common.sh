# shellcheck shell=bash
# Helpers of the PHP buildpack's bin/compile and .php-buildpack/start.

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
