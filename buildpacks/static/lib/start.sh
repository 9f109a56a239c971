#!/usr/bin/env bash
# Start nginx for a site built by the paas static buildpack (installed as
# APP_DIR/.static-buildpack/start; the web process is "bash .static-buildpack/start").
#
# The port is known only at container start, so this renders the final
# nginx.conf into a fresh temp dir: pid file, temp paths and the listen port
# there, everything else included from APP_DIR/.static-buildpack/. No user
# data goes through text substitution: PORT and WEB_CONCURRENCY must be plain
# numbers, the paths must be plain path characters.
#
#   start           exec nginx in the foreground (daemon off), logs on stdout/stderr
#   start --check   render with a dummy port and run "nginx -t" (used by compile)
#
# The access log goes to stdout (through a FIFO, see below), errors to stderr.
# Meant to run unprivileged: no "user" directive, nothing written outside $TMPDIR.
set -euo pipefail

die() {
  printf ' !     %s\n' "$@" >&2
  exit 1
}

check=false
if [[ ${1:-} == --check ]]; then
  check=true
fi

conf_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
app_dir=$(dirname "$conf_dir")
safe_path='^/[A-Za-z0-9/._+-]*$'
[[ $app_dir =~ $safe_path ]] || die "app directory '$app_dir' has characters nginx config cannot hold safely"

if $check; then
  port=5000
else
  port=${PORT:-5000}
fi
if ! [[ $port =~ ^[0-9]{1,5}$ ]] || ((10#$port < 1 || 10#$port > 65535)); then
  die "PORT must be a number from 1 to 65535, got '$port'"
fi
port=$((10#$port))

workers=${WEB_CONCURRENCY:-2}
if ! [[ $workers =~ ^[0-9]{1,3}$ ]] || ((10#$workers < 1)); then
  die "WEB_CONCURRENCY must be a positive number, got '$workers'"
fi
workers=$((10#$workers))

if [[ -x /usr/sbin/nginx ]]; then
  nginx=/usr/sbin/nginx
elif ! nginx=$(command -v nginx); then
  if $check; then
    printf -- '-----> nginx is not installed here: configuration not checked\n'
    exit 0
  fi
  die "nginx is not installed in the stack image"
fi

run_dir=$(mktemp -d "${TMPDIR:-/tmp}/static-web.XXXXXX")
[[ $run_dir =~ $safe_path ]] || die "temp directory '$run_dir' has characters nginx config cannot hold safely"
for dir in client_body proxy fastcgi uwsgi scgi; do
  mkdir "$run_dir/$dir"
done

# nginx reopens its access log by path, and reopening /dev/stdout fails when
# stdout is a pipe or socket owned by another user (the usual case under a
# container runtime). So nginx writes to a FIFO of ours and cat relays it to the
# stdout we inherited. cat becomes nginx's child and exits with it (EOF).
if $check; then
  access_log=/dev/null
else
  access_log=$run_dir/access.log
  mkfifo -m 0600 "$access_log"
  cat "$access_log" &
fi

cat >"$run_dir/nginx.conf" <<CONF
# Rendered by .static-buildpack/start; the static.json part is in http.conf and server.conf.
daemon off;
worker_processes $workers;
pid "$run_dir/nginx.pid";
error_log stderr warn;

events {
    worker_connections 1024;
}

http {
    client_body_temp_path "$run_dir/client_body";
    proxy_temp_path "$run_dir/proxy";
    fastcgi_temp_path "$run_dir/fastcgi";
    uwsgi_temp_path "$run_dir/uwsgi";
    scgi_temp_path "$run_dir/scgi";
    access_log "$access_log";

    include "$conf_dir/mime.types";
    include "$conf_dir/http.conf";

    server {
        listen $port;
        include "$conf_dir/server.conf";
    }
}
CONF

# -p: relative paths in the config (the document root) are relative to the app.
if $check; then
  status=0
  "$nginx" -t -q -p "$app_dir/" -c "$run_dir/nginx.conf" -e stderr || status=$?
  rm -rf "$run_dir"
  if ((status == 0)); then
    printf -- '-----> nginx -t: the configuration is valid\n'
  fi
  exit "$status"
fi
exec "$nginx" -p "$app_dir/" -c "$run_dir/nginx.conf" -e stderr
