#!/usr/bin/env bash
# Start php-fpm behind nginx for an app built by the paas PHP buildpack (installed as
# APP_DIR/.php-buildpack/start; the default web process is "bash .php-buildpack/start").
#
#   start [DOCROOT]           serve DOCROOT (relative to the app; default: public/ when
#                             it exists, else the app directory) on $PORT
#   start --check [DOCROOT]   render with a dummy port, run "nginx -t" and "php-fpm -t"
#
# The port is known only at container start, so the configs are rendered into a fresh
# temp dir: pid files, the FastCGI socket, nginx's temp paths. No user data goes through
# text substitution: PORT and WEB_CONCURRENCY must be plain numbers, the paths plain
# path characters. Logs: nginx's errors and php-fpm's log (with the workers' stderr:
# PHP's errors and error_log()) on stderr, which both write to directly (nginx's
# "stderr", php-fpm's -F -O), so nothing reopens /dev/stderr; nginx's access log on
# stdout through a FIFO relayed by cat (nginx reopens log paths, and /dev/stdout cannot
# be reopened when it is a pipe of another user). Meant to run unprivileged.
# This script runs php-fpm and nginx as its children, stops both when either exits
# (exit 1) and stops them gracefully on SIGTERM/SIGINT/SIGQUIT (nginx first).
set -euo pipefail

die() {
  printf ' !     %s\n' "$@" >&2
  exit 1
}

check=false
docroot=""
for arg in "$@"; do
  case $arg in
    --check) check=true ;;
    -*) die "unsupported option '$arg'" "usage: .php-buildpack/start [DOCROOT]" ;;
    *)
      [[ -z $docroot ]] || die "one document root only, got '$docroot' and '$arg'"
      docroot=$arg
      ;;
  esac
done

conf_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
app_dir=$(dirname "$conf_dir")
safe_path='^/[A-Za-z0-9/._+-]*$'
[[ $app_dir =~ $safe_path ]] || die "app directory '$app_dir' has characters nginx config cannot hold safely"

# --- document root -----------------------------------------------------------------------
if [[ -z $docroot ]]; then
  if [[ -d $app_dir/public ]]; then docroot=public; else docroot=.; fi
fi
docroot=${docroot%/}
docroot=${docroot:-.}
[[ $docroot =~ ^[A-Za-z0-9._-][A-Za-z0-9/._-]*$ && ! $docroot =~ (^|/)\.\.(/|$) ]] ||
  die "document root '$docroot' must be a directory of the app (letters, digits, / . _ -, no ..)"
if [[ $docroot == . ]]; then root=$app_dir; else root=$app_dir/$docroot; fi
[[ -d $root ]] || die "document root '$docroot' is not a directory of the app"

# --- settings --------------------------------------------------------------------------------
if $check; then port=5000; else port=${PORT:-5000}; fi
if ! [[ $port =~ ^[0-9]{1,5}$ ]] || ((10#$port < 1 || 10#$port > 65535)); then
  die "PORT must be a number from 1 to 65535, got '$port'"
fi
port=$((10#$port))
workers=${WEB_CONCURRENCY:-4}
if ! [[ $workers =~ ^[0-9]{1,3}$ ]] || ((10#$workers < 1)); then
  die "WEB_CONCURRENCY must be a positive number (php-fpm workers), got '$workers'"
fi
workers=$((10#$workers))

nginx=/usr/sbin/nginx
[[ -x $nginx ]] || nginx=$(command -v nginx) || die "nginx is not installed in the stack image"
fpm=$(compgen -G '/usr/sbin/php-fpm*' | sort -V | tail -n1 || true)
[[ -n $fpm && -x $fpm ]] || fpm=$(command -v php-fpm) || die "php-fpm is not installed in the stack image"

# the app's php.ini and the buildpack's defaults, after the stack's own ini files
export PHP_INI_SCAN_DIR=":$conf_dir/conf.d"

run=$(mktemp -d "${TMPDIR:-/tmp}/php-web.XXXXXX")
[[ $run =~ $safe_path ]] || die "temp directory '$run' has characters nginx config cannot hold safely"
for dir in client_body proxy fastcgi uwsgi scgi; do
  mkdir "$run/$dir"
done

# --- nginx -------------------------------------------------------------------------------------
if $check; then access_log=/dev/null; else access_log=$run/access.log; fi
front="=404"
# shellcheck disable=SC2016 # nginx variables, expanded by nginx
[[ -f $root/index.php ]] && front='/index.php$is_args$args'
deny=""
if [[ $root == "$app_dir" ]]; then
  # the app directory is served: its build and config files are not content
  deny='location ~ ^/(vendor/|composer\.(json|lock)$|php\.ini$|Procfile$|app\.json$) { return 404; }'
fi
mime=""
[[ -f /etc/nginx/mime.types ]] && mime='include /etc/nginx/mime.types;'

cat >"$run/nginx.conf" <<CONF
# Rendered by .php-buildpack/start.
daemon off;
worker_processes 1;
pid "$run/nginx.pid";
error_log stderr warn;

events {
    worker_connections 1024;
}

http {
    client_body_temp_path "$run/client_body";
    proxy_temp_path "$run/proxy";
    fastcgi_temp_path "$run/fastcgi";
    uwsgi_temp_path "$run/uwsgi";
    scgi_temp_path "$run/scgi";
    access_log "$access_log";
    $mime
    default_type application/octet-stream;
    sendfile on;
    server_tokens off;
    client_max_body_size 32m;
    gzip on;
    gzip_types text/css text/plain text/xml application/javascript application/json image/svg+xml;
    map \$http_x_forwarded_proto \$paas_https {
        default "";
        https on;
    }

    server {
        listen $port;
        root "$root";
        index index.php index.html index.htm;

        # dotfiles (.user.ini, .git, .env, .php-buildpack, .profile.d), not .well-known
        location ~ /\.(?!well-known/) { return 404; }
        $deny
        location / {
            try_files \$uri \$uri/ $front;
        }
        location ~ [^/]\.php(/|\$) {
            fastcgi_split_path_info ^(.+?\.php)(/.*)\$;
            set \$paas_path_info \$fastcgi_path_info;
            try_files \$fastcgi_script_name =404;
            include "$conf_dir/fastcgi_params";
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_param PATH_INFO \$paas_path_info;
            fastcgi_param HTTPS \$paas_https if_not_empty;
            fastcgi_pass unix:$run/php-fpm.sock;
        }
    }
}
CONF

# --- php-fpm ------------------------------------------------------------------------------------
cat >"$run/php-fpm.conf" <<CONF
; Rendered by .php-buildpack/start. With -F -O php-fpm logs to the stderr it was
; given; error_log must still name a file it can open.
[global]
pid = $run/php-fpm.pid
error_log = /dev/null
log_limit = 8192
daemonize = no
process_control_timeout = 10s
systemd_interval = 0

[web]
listen = $run/php-fpm.sock
listen.mode = 0600
pm = ondemand
pm.max_children = $workers
pm.process_idle_timeout = 60s
; config vars reach PHP (getenv, \$_SERVER, \$_ENV with variables_order EGPCS)
clear_env = no
catch_workers_output = yes
decorate_workers_output = no
security.limit_extensions = .php
php_admin_flag[log_errors] = on
CONF

if $check; then
  status=0
  out=$("$nginx" -t -q -p "$app_dir/" -c "$run/nginx.conf" -e stderr 2>&1) || status=$?
  if ((status == 0)); then
    out=$("$fpm" -t -y "$run/php-fpm.conf" 2>&1) || status=$?
  fi
  rm -rf "$run"
  if ((status != 0)); then
    printf '%s\n' "$out" >&2
    exit "$status"
  fi
  printf -- '-----> nginx -t and php-fpm -t: the configuration is valid (document root %s)\n' "$docroot"
  exit 0
fi

# --- run ------------------------------------------------------------------------------------------
fpm_pid="" nginx_pid="" cat_pid=""
# stop graceful|now: stop what runs; "now" after a crash: a dead nginx master may
# leave workers holding the FIFO, so cat is not waited for
stop() {
  trap - TERM INT QUIT
  # nginx first: it finishes the requests it has, then php-fpm its running scripts
  if [[ -n $nginx_pid ]]; then
    kill -QUIT "$nginx_pid" 2>/dev/null || true
    wait "$nginx_pid" || true
  fi
  exec 3>&- # the FIFO's last writer: cat relays what is left, then sees EOF
  if [[ -n $cat_pid ]]; then
    if [[ $1 == now ]]; then kill "$cat_pid" 2>/dev/null || true; fi
    wait "$cat_pid" || true
  fi
  if [[ -n $fpm_pid ]]; then
    kill -QUIT "$fpm_pid" 2>/dev/null || true
    wait "$fpm_pid" || true
  fi
  rm -rf "$run"
}
trap 'stop graceful; exit 0' TERM INT QUIT

"$fpm" -F -O -y "$run/php-fpm.conf" &
fpm_pid=$!
for ((i = 0; i < 200; i++)); do
  [[ -S $run/php-fpm.sock ]] && break
  if ! kill -0 "$fpm_pid" 2>/dev/null; then
    fpm_pid=""
    rm -rf "$run"
    die "php-fpm did not start: see its output above"
  fi
  sleep 0.05
done

mkfifo -m 0600 "$access_log"
cat "$access_log" &
cat_pid=$!
# this shell holds a writer too, so cat never sees EOF before nginx opened the log,
# and always does once nginx is gone (stop closes it)
exec 3>"$access_log"
"$nginx" -p "$app_dir/" -c "$run/nginx.conf" -e stderr 3>&- &
nginx_pid=$!

status=0
wait -n "$fpm_pid" "$nginx_pid" || status=$?
if ! kill -0 "$nginx_pid" 2>/dev/null; then
  nginx_pid=""
  printf ' !     nginx exited (status %d): stopping php-fpm\n' "$status" >&2
else
  fpm_pid=""
  printf ' !     php-fpm exited (status %d): stopping nginx\n' "$status" >&2
fi
stop now
exit 1
