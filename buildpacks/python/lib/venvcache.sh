# shellcheck shell=bash
# The Python buildpack's kept venv: the finished .venv of the last build, in
# CACHE_DIR/venvs/<key>, restored by the next build with the same key instead of
# running the package manager (like Heroku, which keeps site-packages): an unchanged
# rebuild takes a copy (~0.2 s) and downloads nothing. The key covers what the venv
# is made of: the lock or requirement files, the manager (and its version), the
# Python version, the stack's wheels and the venv's path (its scripts name it; in paas
# it is always /app/.venv). A PEP 517 project and local or editable requirements
# are never kept (they change with the source). Uses: build_dir cache_dir venv
# PYTHON_VERSION WHEELHOUSE and managers.sh.

# venv_key MANAGER: the kept venv's key, or nothing when it cannot be kept.
venv_key() {
  local files=() stack
  stack=$(cd "$WHEELHOUSE" 2>/dev/null && printf '%s ' *.whl)
  case $1 in
    pip)
      if has_requirements && has_local_requirements; then
        return 0
      fi
      mapfile -t files < <(requirements_files)
      ;;
    poetry) files=(poetry.lock pyproject.toml "poetry $POETRY_VERSION") ;;
    uv) files=(uv.lock pyproject.toml "uv $UV_VERSION") ;;
    *) return 0 ;;
  esac
  files_key "venv of $1" "$venv" "stack: $stack" "${files[@]}"
}

# restore_venv KEY: put the kept venv of KEY at $venv; false when there is none.
restore_venv() {
  local saved=$cache_dir/venvs/$1
  [[ -n $1 && -f $saved/.complete && -x $saved/venv/bin/python ]] || return 1
  rm -rf "$venv"
  cp -a "$saved/venv" "$venv"
}

# save_venv KEY: keep $venv as the venv of KEY (the only one kept), published whole.
save_venv() {
  local staging=$cache_dir/venvs/.staging
  rm -rf "$cache_dir/venvs"
  mkdir -p "$staging"
  cp -a "$venv" "$staging/venv"
  touch "$staging/.complete"
  mv "$staging" "$cache_dir/venvs/$1"
}
