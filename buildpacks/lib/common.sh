# shellcheck shell=bash
# Helpers every shipped buildpack sources (paas mounts this directory at
# /buildpacks/lib, next to the buildpacks, so "$(dirname "$0")/../../lib" finds it):
# Heroku-style output and the export of the app's config vars from ENV_DIR.

# "-----> step", "       detail", " !     warning/error" (Heroku's format).
topic() { printf -- '-----> %s\n' "$*"; }
detail() { printf '       %s\n' "$*"; }
# Indent a command's output as detail lines (sed only ever sees tool output).
indent() { sed -u 's/^/       /'; }
warn() { printf ' !     %s\n' "$@" >&2; }
# " !     message" on stderr (one line per argument), then exit 1.
die() {
  printf ' !     %s\n' "$@" >&2
  exit 1
}

# elapsed SINCE: seconds since SINCE (a value of $EPOCHREALTIME), e.g. "1.4s".
elapsed() {
  local now=${EPOCHREALTIME/[.,]/} start=${1/[.,]/}
  local ms=$(((now - start) / 1000))
  printf '%d.%ds' $((ms / 1000)) $((ms % 1000 / 100))
}

# Config vars that never reach a build: the build's own environment (paths, the
# dynamic loader, node's module path, Python's and git's locations, the locale) and bash's special or
# read-only variables, which would break or hijack the buildpack's own shell.
# Everything else in ENV_DIR is exported, as Heroku's export_env_dir does.
ENV_DENYLIST='^(PATH|HOME|TMPDIR|LANG|LC_ALL|SHELL|USER|LOGNAME|PWD|OLDPWD|SHLVL|CPATH|CPPATH|LIBRARY_PATH|LD_[A-Z0-9_]*|NODE_PATH|PYTHONHOME|PYTHONPATH|GIT_DIR|GIT_WORK_TREE|GIT_INDEX_FILE|GIT_OBJECT_DIRECTORY|BUILD_DIR|CACHE_DIR|ENV_DIR|STACK|BASH|BASH_[A-Z0-9_]*|BASHOPTS|SHELLOPTS|ENV|IFS|CDPATH|GLOBIGNORE|PS4|POSIXLY_CORRECT|EUID|UID|PPID|GROUPS|SECONDS|RANDOM|SRANDOM|LINENO|EPOCHREALTIME|EPOCHSECONDS|OPTIND|OPTARG|FUNCNAME|HISTFILE|_)$'

# export_env_dir ENV_DIR: export every config var of ENV_DIR (one file per var,
# the content is the value) except those matching ENV_DENYLIST or read-only in bash;
# names that are not shell identifiers are skipped too. Prints one line naming what was held back.
export_env_dir() {
  local env_dir=${1:-} path key skipped=()
  [[ -n $env_dir && -d $env_dir ]] || return 0
  for path in "$env_dir"/*; do
    [[ -f $path ]] || continue
    key=${path##*/}
    if ! [[ $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || [[ $key =~ $ENV_DENYLIST ]] ||
      [[ $(declare -p "$key" 2>/dev/null) =~ ^declare\ -[a-zA-Z]*r ]]; then
      skipped+=("$key")
      continue
    fi
    export "$key=$(<"$path")"
  done
  if ((${#skipped[@]})); then
    detail "Config vars not exported to the build (the build sets them): ${skipped[*]}"
  fi
}
