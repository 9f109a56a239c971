# shellcheck shell=bash
# Go-only helpers of the Go buildpack's bin/compile and bin/release (the output helpers
# and export_env_dir come from the shared ../../lib/common.sh).

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
