#!/bin/bash
# paas's buildpack driver: runs inside the build container as the app user.
#   buildpack-driver.sh BUILD_DIR CACHE_DIR ENV_DIR OUT_DIR detect|given BUILDPACK_DIR...
# detect: the first buildpack whose bin/detect passes is used (exit 100 if none);
# given:  every buildpack is used in order (Heroku's multi-buildpack), each must detect.
# Each used buildpack's bin/release output goes to OUT_DIR/release-N.yml, its detected
# name to OUT_DIR/name-N. Output is Heroku's: "-----> Name app detected", then compile's.
set -euo pipefail

build=$1 cache=$2 env=$3 out=$4 mode=$5
shift 5

if [[ $mode == detect ]]; then
  chosen=()
  for bp in "$@"; do
    if "$bp/bin/detect" "$build" >/dev/null 2>&1; then
      chosen=("$bp")
      break
    fi
  done
  ((${#chosen[@]})) || exit 100
  set -- "${chosen[@]}"
fi

n=0
for bp in "$@"; do
  n=$((n + 1))
  if ! name=$("$bp/bin/detect" "$build" 2>/dev/null); then
    echo " !     the app is not compatible with buildpack $(basename "$bp") (its bin/detect failed)" >&2
    exit 101
  fi
  name=${name%%$'\n'*}
  printf '%s' "${name:-$(basename "$bp")}" >"$out/name-$n"
  "$bp/bin/compile" "$build" "$cache" "$env"
  if [[ -x $bp/bin/release ]]; then
    "$bp/bin/release" "$build" >"$out/release-$n.yml"
  fi
done
