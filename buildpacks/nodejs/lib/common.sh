# shellcheck shell=bash
# Helpers of the Node.js buildpack's bin/compile and bin/release.

# Heroku-style progress output: "-----> step" and "       detail".
topic() { printf -- '-----> %s\n' "$*"; }
detail() { printf '       %s\n' "$*"; }
# Indent a command's output as detail lines (sed only ever sees tool output).
indent() { sed -u '/^[[:space:]]*$/d; s/^/       /'; }
# " !     message" on stderr (a warning: the build goes on).
warn() { printf ' !     %s\n' "$@" >&2; }
# " !     message" on stderr, then exit 1.
die() {
  printf ' !     %s\n' "$@" >&2
  exit 1
}

# Seconds since $1 (an $EPOCHREALTIME), with one decimal: "2.3s".
elapsed() {
  local now=${EPOCHREALTIME/./} then=${1/./}
  local ms=$(((now - then) / 1000))
  printf '%d.%ds' $((ms / 1000)) $((ms % 1000 / 100))
}

# Config vars that would break the build tools or the container if exported
# (Heroku's denylist for ENV_DIR, plus what the stack's environment defines).
is_denied_config_var() {
  [[ $1 =~ ^(PATH|HOME|TMPDIR|LANG|SHELL|USER|PWD|OLDPWD|IFS|PS4|STACK|BUILD_DIR|CACHE_DIR|ENV_DIR|GIT_DIR|GIT_WORK_TREE|CPATH|CPPATH|LIBRARY_PATH|BASH_ENV|ENV|SHELLOPTS|BASHOPTS|BASH_[A-Z_]*|NODE_PATH|LD_[A-Z_]*)$ ]] && return 0
  # bash's read-only variables (UID, EUID, PPID, ...) cannot be set at all
  [[ $(declare -p "$1" 2>/dev/null) =~ ^declare\ -[a-zA-Z]*r ]]
}

# export_env_dir ENV_DIR: every config var reaches the build (npm_config_*,
# NODE_ENV, NPM_TOKEN, the app's own build settings), as Heroku's export_env
# does; the denylist above is left out. Names are exported only if they are
# shell identifiers (paas writes no others).
export_env_dir() {
  local env_dir=$1 path key
  [[ -n $env_dir && -d $env_dir ]] || return 0
  for path in "$env_dir"/*; do
    [[ -f $path ]] || continue
    key=${path##*/}
    [[ $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    is_denied_config_var "$key" && continue
    export "$key=$(<"$path")"
  done
}
