#!/usr/bin/env bash
# Install paas on this host (Debian 12), as root:
#   1. system packages (runc, nginx, mmdebstrap, ...) - apt only runs when one is missing
#   2. a Python venv in <repo>/.venv with paas installed editable - only rebuilt when
#      pyproject.toml, the repo path or the venv's interpreter changed
#   3. /usr/local/bin/paas and /usr/local/bin/paasd linked to the venv's scripts
#   4. unless PAAS_SKIP_BOOTSTRAP=1: the paas user for git over SSH, root's subordinate
#      ids for apps' id ranges (/etc/subuid, /etc/subgid), start paasd and build the
#      default base image
# A second run changes nothing and takes about a second.
#
# Environment: PAAS_SKIP_BOOTSTRAP=1 stops after step 3 (tests bootstrap their own
# instances); PAAS_ROOT and the other PAAS_* variables are passed through to paas.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly REPO
readonly VENV="$REPO/.venv"
readonly STAMP="$VENV/.paas-install-stamp"
readonly BIN_DIR=/usr/local/bin
readonly BASE_IMAGE=debian:bookworm
readonly PACKAGES=(
  runc nginx git mmdebstrap iptables nftables iproute2 uidmap skopeo umoci sqlite3
  python3-venv python3-pip python3-dev gcc openssh-server ca-certificates gunicorn sudo publicsuffix
  e2fsprogs
  tini
)

# --- output, Dokku style ------------------------------------------------------

_step_started=0

_now_us() { echo "${EPOCHREALTIME//[.,]/}"; }

step() {
  printf -- '-----> %s\n' "$*"
  _step_started=$(_now_us)
}

info() { printf '       %s\n' "$*"; }

step_done() {
  local us=$(($(_now_us) - _step_started))
  printf '       %s in %d.%01ds\n' "${1:-done}" $((us / 1000000)) $((us % 1000000 / 100000))
}

die() {
  printf ' !     %s\n' "$@" >&2
  exit 1
}

# --- steps --------------------------------------------------------------------

require_root() {
  [[ ${EUID} -eq 0 ]] || die "install.sh must run as root: it installs packages and links into $BIN_DIR" \
    "run: sudo $0"
  [[ -r /etc/debian_version ]] || die "install.sh supports Debian 12 (bookworm) hosts only"
}

missing_packages() {
  local pkg status
  for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [[ $status == installed ]] || echo "$pkg"
  done
}

install_packages() {
  step "Installing system packages"
  local missing
  mapfile -t missing < <(missing_packages)
  if ((${#missing[@]} == 0)); then
    step_done "all ${#PACKAGES[@]} present, skipped"
    return
  fi
  info "missing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  step_done
}

# The system python3 if it is new enough, else the first python3 on PATH.
pick_python() {
  local candidate
  for candidate in /usr/bin/python3 "$(command -v python3 || true)"; do
    [[ -n $candidate && -x $candidate ]] || continue
    if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"
      return
    fi
  done
  die "paas needs Python >= 3.11 and none was found (tried /usr/bin/python3 and python3 on PATH)"
}

venv_works() {
  [[ -x $VENV/bin/python ]] &&
    "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

# What the venv was built from: when this changes, pip install runs again.
venv_fingerprint() {
  {
    sha256sum "$REPO/pyproject.toml" | cut -d' ' -f1
    echo "$REPO"
    echo "editable_mode=compat"
    "$VENV/bin/python" -c 'import sys; print(sys.version)'
  } | sha256sum | cut -d' ' -f1
}

# True when the editable install in the venv points at this checkout.
paas_importable() {
  local where
  where=$(cd / && "$VENV/bin/python" -c 'import paas; print(paas.__file__)' 2>/dev/null) || return 1
  [[ $where == "$REPO/paas/"* ]]
}

install_venv() {
  step "Installing paas into $VENV"
  if ! venv_works; then
    local python
    python=$(pick_python)
    info "creating the venv with $python ($("$python" --version 2>&1))"
    "$python" -m venv --clear "$VENV"
  fi
  local want
  want=$(venv_fingerprint)
  if [[ -f $STAMP && $(<"$STAMP") == "$want" ]] && paas_importable; then
    step_done "up to date, skipped"
    return
  fi
  rm -f "$STAMP"
  # compat mode: a plain path entry in a .pth file. The default editable finder costs
  # ~17 ms of imports (pathlib, importlib.util) at every start of the CLI.
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    --config-settings editable_mode=compat -e "${REPO}[test]"
  paas_importable || die "paas is not importable from $VENV after pip install"
  echo "$want" >"$STAMP"
  step_done
}

# The paas command starts Python with -S: the site module and pip's console script
# (which imports re) cost ~5 ms on every call, and every container start pays them.
# The two paths site would add (the checkout and site-packages) are listed instead.
write_launcher() {
  local purelib want
  purelib=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
  want=$(printf '%s\n' "#!$VENV/bin/python -S" \
    "# written by install.sh: python -S skips site; its paths are listed here" \
    "import sys" \
    "sys.path[1:1] = [$(printf "'%s', '%s'" "$REPO" "$purelib")]" \
    "from paas.cli.main import entry" \
    "entry()")
  if [[ ! -f $VENV/bin/paas || $(<"$VENV/bin/paas") != "$want" ]]; then
    printf '%s\n' "$want" >"$VENV/bin/paas.tmp"
    chmod 755 "$VENV/bin/paas.tmp"
    mv -f "$VENV/bin/paas.tmp" "$VENV/bin/paas"
  fi
}

link_commands() {
  step "Linking paas and paasd into $BIN_DIR"
  local name changed=0
  for name in paas paasd; do
    [[ -x $VENV/bin/$name ]] || die "$VENV/bin/$name is missing: the pip install did not create it"
    if [[ $(readlink "$BIN_DIR/$name" 2>/dev/null || true) != "$VENV/bin/$name" ]]; then
      ln -sfn "$VENV/bin/$name" "$BIN_DIR/$name"
      changed=1
    fi
  done
  if ((changed)); then step_done; else step_done "already linked, skipped"; fi
}

# A paas command is implemented once its CLI module exists; a module that exists
# but fails to import is a real error and is left to fail loudly.
command_available() {
  local module
  module=$("$VENV/bin/python" -c 'import sys
from paas.cli.main import COMMANDS
print(COMMANDS[sys.argv[1]][0] if sys.argv[1] in COMMANDS else "")' "$1")
  [[ -n $module ]] &&
    "$VENV/bin/python" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec(sys.argv[1]) is None)' "$module"
}

bootstrap() {
  local cmd
  for cmd in daemon:status daemon:start image:inspect image:bootstrap; do
    if ! command_available "$cmd"; then
      printf ' !     %s\n' "'paas $cmd' is not part of this build yet: not starting paasd or building $BASE_IMAGE" >&2
      return
    fi
  done

  step "Starting paasd"
  if "$BIN_DIR/paas" daemon:status >/dev/null 2>&1; then
    step_done "already running, skipped"
  else
    "$BIN_DIR/paas" daemon:start
    step_done
  fi
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
    step "Starting git over HTTP (paas-git-http.service)"
    systemctl restart paas-git-http.service
    step_done
  else
    info "no systemd: run 'paas git:http-serve' under your supervisor for git push over HTTP"
  fi

  step "Bootstrapping base image $BASE_IMAGE"
  if "$BIN_DIR/paas" image:inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    step_done "present, skipped"
  else
    "$BIN_DIR/paas" image:bootstrap
    step_done
  fi

  step "Bootstrapping the buildpack stack image paas/stack:bookworm"
  if "$BIN_DIR/paas" image:inspect paas/stack:bookworm >/dev/null 2>&1; then
    step_done "present, skipped"
  else
    "$BIN_DIR/paas" image:bootstrap --stack
    step_done
  fi
}

# On a systemd host, start paasd at boot (it then restarts containers whose restart
# policy says so). paasd forks its keeper; containers live in their own cgroups, so
# stopping the unit stops paasd and the keeper only, never the containers.
install_boot_unit() {
  [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null || return 0
  step "Starting paasd and git over HTTP at boot (systemd units paas, paas-git-http)"
  local unit=/etc/systemd/system/paas.service want
  want=$(cat <<UNIT
[Unit]
Description=paas container engine (paasd and its keeper)
After=network-online.target
Wants=network-online.target

[Service]
Type=forking
ExecStart=$BIN_DIR/paas daemon:start
ExecStartPost=$BIN_DIR/paas ps:restore
ExecStop=$BIN_DIR/paas daemon:stop --all --force
PIDFile=/var/lib/paas/run/keeper.pid
KillMode=process
Restart=on-failure

[Install]
WantedBy=multi-user.target
UNIT
)
  local http=/etc/systemd/system/paas-git-http.service want_http
  want_http=$(cat <<UNIT
[Unit]
Description=paas git push over smart HTTP (gunicorn, port \$PAAS_HTTP_GIT_PORT or 8022)
After=paas.service

[Service]
EnvironmentFile=-/etc/default/paas-git-http
ExecStart=$BIN_DIR/paas git:http-serve
Restart=on-failure

[Install]
WantedBy=multi-user.target
UNIT
)
  if [[ -f $unit && $(<"$unit") == "$want" && -f $http && $(<"$http") == "$want_http" ]]; then
    step_done "already installed, skipped"
    return
  fi
  printf '%s\n' "$want" >"$unit"
  printf '%s\n' "$want_http" >"$http"
  systemctl daemon-reload
  systemctl enable paas.service paas-git-http.service >/dev/null
  step_done
}

# write_if_changed FILE MODE < content: replace FILE atomically when its content
# differs; false when it was already right.
write_if_changed() {
  local file=$1 mode=$2 want
  want=$(cat)
  if [[ -f $file && $(<"$file") == "$want" ]]; then
    return 1
  fi
  printf '%s\n' "$want" >"$file.tmp"
  chmod "$mode" "$file.tmp"
  mv -f "$file.tmp" "$file"
}

# /etc/paas/paas.conf ($PAAS_CONFIG): settings of every paas command on this host,
# whatever the shell (paas/conffile.py: PAAS_NAME=value lines, the environment
# overrides them). Each
# PAAS_NAME=value argument is added when the file does not set that name yet: the
# operator's own lines and values are kept. False when nothing changed.
write_paas_conf() {
  local conf=${PAAS_CONFIG:-/etc/paas/paas.conf} line changed=1
  [[ -d ${conf%/*} ]] || install -d -m 755 -o root -g root "${conf%/*}"
  if [[ ! -f $conf ]]; then
    printf '%s\n' "# paas settings: PAAS_NAME=value, no quotes; the environment overrides them" \
      "# (written by paas's install.sh, which only adds missing names: edit freely)" \
      >"$conf.tmp"
    chmod 644 "$conf.tmp"
    mv -f "$conf.tmp" "$conf"
    changed=0
  fi
  for line in "$@"; do
    if ! grep -q "^${line%%=*}=" "$conf"; then
      printf '%s\n' "$line" >>"$conf"
      changed=0
    fi
  done
  return $changed
}

# git push over SSH: sshd logs pushers in as the unprivileged user "paas", whose
# authorized_keys entries (written by "paas ssh-keys:add") force the command
# "sudo -n env PAAS_ROOT=... paas git:ssh-command --key NAME"; sudo lets exactly
# that command run as root (deploys start containers). The settings ssh-keys:add needs
# (which user, which file sshd reads) are in /etc/paas/paas.conf, so a non-login
# root shell gets them too; sshd's drop-in names the same file for the paas user.
setup_git_ssh() {
  step "Setting up git push over SSH (user paas)"
  local changed=0 home=/home/paas
  if ! id paas >/dev/null 2>&1; then
    useradd --system --create-home --home-dir "$home" --shell /bin/sh paas
    usermod -p '*' paas # no password, but not locked: sshd without PAM refuses '!'
    changed=1
  fi
  install -d -m 700 -o paas -g paas "$home/.ssh"
  [[ -f $home/.ssh/authorized_keys ]] ||
    install -m 600 -o paas -g paas /dev/null "$home/.ssh/authorized_keys"
  write_paas_conf "PAAS_SSH_USER=paas" "PAAS_AUTHORIZED_KEYS=$home/.ssh/authorized_keys" \
    "PAAS_BIN=$BIN_DIR/paas" "PAAS_SSH_SUDO=1" && changed=1
  # older installs exported these from login shells only (and the environment would
  # now override the file): gone
  if [[ -f /etc/profile.d/paas.sh ]] &&
    grep -q "^# written by paas's install.sh" /etc/profile.d/paas.sh; then
    rm -f /etc/profile.d/paas.sh
    info "removed /etc/profile.d/paas.sh: settings are in /etc/paas/paas.conf (log in again)"
    changed=1
  fi
  mkdir -p /etc/sudoers.d
  local rule="paas ALL=(root) NOPASSWD: /usr/bin/env PAAS_ROOT=/var/lib/paas $BIN_DIR/paas git\\:ssh-command --key *"
  if write_if_changed /etc/sudoers.d/paas 440 <<SUDOERS; then
# written by paas's install.sh: a git push over SSH runs exactly this as root
Defaults:paas env_keep += "SSH_ORIGINAL_COMMAND"
Defaults:paas !requiretty
$rule
SUDOERS
    visudo -cqf /etc/sudoers.d/paas || {
      rm -f /etc/sudoers.d/paas
      die "the sudoers rule for paas does not validate"
    }
    changed=1
  fi
  if [[ -d /etc/ssh/sshd_config.d ]] && write_if_changed /etc/ssh/sshd_config.d/paas.conf 644 <<SSHD; then
# written by paas's install.sh: the paas user only pushes (its keys force the command)
Match User paas
    AuthorizedKeysFile $home/.ssh/authorized_keys
    PasswordAuthentication no
    KbdInteractiveAuthentication no
    AuthenticationMethods publickey
    PermitTTY no
    AllowTcpForwarding no
    X11Forwarding no
SSHD
    changed=1
    if pgrep -x sshd >/dev/null && sshd -t; then
      pkill -HUP -o -x sshd # reload the listener's config
    fi
  fi
  if ((changed)); then step_done; else step_done "already set up, skipped"; fi
}

# Apps' id ranges: paas gives each app 65,536 host ids of root's subordinate ids
# (as Incus and LXD do). Without an entry for root in both files, one is added
# past every existing entry and past useradd's SUB_UID_MAX (so it never takes ids
# useradd would give to users), aligned to 65,536: room for 10,000 apps.
readonly SUBID_COUNT=$((65536 * 10000))
setup_subids() {
  step "Reserving subordinate ids for apps (root in /etc/subuid, /etc/subgid)"
  local f has=0 start end max_login
  for f in /etc/subuid /etc/subgid; do
    [[ -f $f ]] && grep -q '^root:' "$f" && has=$((has + 1))
  done
  if ((has == 2)); then
    step_done "root has entries, skipped"
    return
  fi
  if ((has == 1)); then
    printf ' !     %s\n' "root is in only one of /etc/subuid and /etc/subgid: apps need the same ids in both; 'paas report' shows the pool" >&2
    step_done "left as it is"
    return
  fi
  max_login=$(awk '$1 == "SUB_UID_MAX" || $1 == "SUB_GID_MAX" {print $2}' /etc/login.defs 2>/dev/null | sort -n | tail -1)
  start=$((${max_login:-600100000} + 1))
  for f in /etc/subuid /etc/subgid; do
    [[ -f $f ]] || continue
    end=$(awk -F: 'NF == 3 && $2 ~ /^[0-9]+$/ && $3 ~ /^[0-9]+$/ {e = $2 + $3; if (e > m) m = e} END {print m + 0}' "$f")
    ((end > start)) && start=$end
  done
  start=$(((start + 65535) / 65536 * 65536))
  for f in /etc/subuid /etc/subgid; do
    printf 'root:%d:%d\n' "$start" "$SUBID_COUNT" >>"$f"
  done
  step_done "root:$start:$SUBID_COUNT"
}

# nginx's workers run as nobody with this group, and only they have it: certificate
# keys (PAAS_ROOT/certs/APP/tls.pem, 0640 root:paas-www) are readable by them alone
setup_workers_group() {
  getent group paas-www >/dev/null 2>&1 && return 0
  step "Adding the system group paas-www (nginx's workers)"
  groupadd --system paas-www
  step_done
}

main() {
  require_root
  install_packages
  setup_workers_group
  install_venv
  # bytecode up front: the CLI's start time is part of every container start
  "$VENV/bin/python" -m compileall -q "$REPO/paas" >/dev/null
  write_launcher
  link_commands
  install_boot_unit
  if [[ ${PAAS_SKIP_BOOTSTRAP:-0} == 1 ]]; then
    info "PAAS_SKIP_BOOTSTRAP=1: not starting paasd, building images or adding the paas user"
  else
    setup_git_ssh
    setup_subids
    bootstrap
  fi
  printf -- '-----> paas is installed: run "paas --help"\n'
}

main "$@"
