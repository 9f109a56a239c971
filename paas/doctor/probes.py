"""The probes of ``paas report``: each looks at one part of the instance (versions,
cgroups, the bridge and its iptables rules, paasd and its keeper, nginx and its live
config, git over HTTP, sshd and the key file it reads, disk space and the store) and returns ``Check``s, a problem
always with its fix. Read-only: nothing is created, started or repaired here, and
nothing imports pyroute2; the whole report takes well under a second.

Not here: pure verdicts (``checks``), rendering (``paas.cli.doctor``).
"""

from __future__ import annotations

import ipaddress
import os
import platform
import socket
import sqlite3

from .. import __version__, proc
from ..config import Context
from ..errors import PaasError
from .checks import Check, cgroup_mode, disk_check, first_version, git_http_port

__all__ = ["repair_network", "run_probes"]

FIX_DAEMON = "start it with 'paas daemon:start'"
FIX_NETWORK = "run 'paas report --fix' (sets up the bridge and installs its rules again)"


def _tool_version(argv: list[str]) -> str:
    try:
        res = proc.run(argv, check=False, timeout=5, what=argv[0])
    except PaasError:
        return ""
    return first_version(res.stdout + res.stderr)


def versions(ctx: Context) -> list[Check]:
    from ..proxy.params import params_from_env

    out = [Check("versions", "paas version", __version__),
           Check("versions", "python version", platform.python_version()),
           Check("versions", "kernel version", platform.release())]
    runc = _tool_version([ctx.runc, "--version"])
    out.append(Check("versions", "runc version", runc or "missing",
                     "" if runc else f"runc ({ctx.runc}) does not run",
                     "install it: apt-get install runc (or run ./install.sh)"))
    nginx = _tool_version([params_from_env(ctx).nginx, "-v"])
    out.append(Check("versions", "nginx version", nginx or "missing",
                     "" if nginx else "nginx is not installed",
                     "install it: apt-get install nginx-light (or run ./install.sh)"))
    out.append(_init_check(ctx))
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        mode = cgroup_mode(f.read())
    out.append(Check("versions", "cgroup mode", mode,
                     "no cgroup filesystem is mounted" if mode == "none" else "",
                     "mount cgroup2 on /sys/fs/cgroup (systemd does at boot)"))
    return out


def _init_check(ctx: Context) -> Check:
    """The init of app processes and ``--init`` (tini): without it no app deploys."""
    from ..runtime.init import find_init

    try:
        path = find_init(ctx.init_path)
    except PaasError as err:
        return Check("versions", "container init", "missing", err.message, err.hint)
    return Check("versions", "container init", f"{_tool_version([path, '--version'])} ({path})")


def network(ctx: Context, conn: sqlite3.Connection) -> list[Check]:
    from ..network import links
    from ..network.bridge import BridgeNetwork
    from ..network.rules import base_rules, jump_rules, parse_save, plan_ensure

    net = BridgeNetwork(ctx, conn)
    br = net.names.bridge
    stored = net.ipam.get("subnet")
    if not stored:
        return [Check("network", "bridge", f"{br} (never set up)",
                      "the instance's bridge was never set up (the first container sets it up)",
                      FIX_NETWORK)]
    subnet = ipaddress.IPv4Network(stored)
    if not links.interface_exists(br):
        return [Check("network", "bridge", f"{br} missing ({subnet})",
                      f"bridge {br} does not exist", FIX_NETWORK)]
    want = f"{next(subnet.hosts())}/{subnet.prefixlen}"
    out = [Check("network", "bridge", f"{br} {want}",
                 "" if want in links.link_addresses(br) and links.is_up(br)
                 else f"bridge {br} is down or lacks its address {want}", FIX_NETWORK)]
    res = proc.run(["iptables-save"], check=False, timeout=10, what="read iptables")
    if res.returncode != 0:
        out.append(Check("network", "rules", "unreadable", "iptables-save failed: "
                         f"{res.stderr.strip()[:200]}", "run as root; install iptables"))
        return out
    missing = plan_ensure(parse_save(res.stdout), net.names,
                          base_rules(net.names, subnet, net._dns_target()),
                          jump_rules(net.names))
    out.append(Check("network", "NAT/FORWARD rules",
                     "ok" if not missing else f"{len(missing)} change(s) needed",
                     "" if not missing else "the bridge's iptables rules are missing or "
                     "changed (containers lose their network or published ports)",
                     FIX_NETWORK))
    from ..network import policy

    bad = policy.problems(net.names, policy.ports_of(net.ipam))
    out.append(Check("network", "isolation (nftables)",
                     "ok" if not bad else f"{len(bad)} problem(s)",
                     "" if not bad else "containers' isolation and anti-spoofing rules are "
                     "missing or stale (" + "; ".join(bad[:3]) + ")", FIX_NETWORK))
    return out


def repair_network(ctx: Context, conn: sqlite3.Connection) -> None:
    """``report --fix``: the bridge, its address, sysctls and iptables rules (again)."""
    from ..network.bridge import BridgeNetwork

    BridgeNetwork(ctx, conn).ensure(force=True)


def services(ctx: Context) -> list[Check]:
    from ..daemon.client import DaemonClient
    from ..daemon.process import read_pidfile
    from ..proxy import Proxy
    from ..runtime.resolve import pid_start_time

    out = []
    ping = DaemonClient(ctx.paths).ping(timeout=0.5)
    keeper = read_pidfile(ctx.paths.keeper_pidfile)
    keeper_alive = keeper is not None and pid_start_time(keeper) is not None
    if ping is None:
        out.append(Check("services", "paasd", "not running", "paasd is not running "
                         "(containers cannot be started or restarted)", FIX_DAEMON))
    else:
        pid = read_pidfile(ctx.paths.daemon_pidfile)
        out.append(Check("services", "paasd", f"running (pid {pid})"))
    out.append(Check("services", "keeper",
                     f"running (pid {keeper})" if keeper_alive else "not running",
                     "" if keeper_alive or ping is None else "paasd runs without its keeper "
                     "(containers would die with it)",
                     "restart it: 'paas daemon:stop' then 'paas daemon:start'"))
    proxy = Proxy(ctx)
    if not proxy.is_running():
        out.append(Check("services", "nginx", "not running",
                         "nginx is not running: no app is reachable", "run 'paas nginx:start'"))
    else:
        try:
            proxy.validate()
            out.append(Check("services", "nginx", "running, config ok"))
        except PaasError as err:
            out.append(Check("services", "nginx", "running, config invalid",
                             err.message, "fix or remove the offending vhost "
                             "(paas nginx:show-config APP), then 'paas nginx:validate'"))
    out.append(_git_http())
    out.append(_sshd(ctx))
    return out


def _sshd(ctx: Context) -> Check:
    """An sshd runs with ``PAAS_SSHD_CONFIG`` and reads, for the ssh user, the file
    ``ssh-keys:add`` writes (else keys are added, exit 0, and never let anyone in)."""
    from .. import conffile
    from ..receive import authorized_keys_path
    from ..receive.sshd import query, running_configs, ssh_settings

    _sshd_bin, config, user = ssh_settings(os.environ)
    if os.path.realpath(config) not in running_configs():
        return Check("services", "sshd", "not running",
                     f"git push over ssh is unavailable (no sshd runs with {config})",
                     "start sshd (e.g. service ssh start); pushes over HTTP do not need it",
                     warning=True)
    view = query(os.environ)
    settings = os.environ.get(conffile.ENV) or conffile.DEFAULT_PATH
    if view.error:
        return Check("services", "sshd", "running, keys unknown", view.error,
                     f"run ./install.sh (it creates the ssh user), or set PAAS_SSH_USER in "
                     f"{settings}")
    ours = authorized_keys_path(ctx.paths.root)
    if ours not in view.files:
        reads = ", ".join(view.files) or "no file"
        return Check("services", "sshd", f"running, reads {reads}",
                     f"sshd reads {reads} for user {user}, not {ours}, where ssh-keys:add "
                     "writes: added keys do not authenticate",
                     f"set PAAS_AUTHORIZED_KEYS={view.files[0] if view.files else '...'} in "
                     f"{settings} and add the keys again, or make sshd's AuthorizedKeysFile "
                     f"for {user} {ours}")
    return Check("services", "sshd", f"running, {user}'s keys in {ours}")


def _git_http() -> Check:
    try:
        with open("/etc/default/paas-git-http", encoding="utf-8") as f:
            text = f.read()
    except OSError:
        text = ""
    port = git_http_port(text, os.environ.get("PAAS_HTTP_GIT_PORT", ""))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return Check("services", "git http", f"listening on port {port}")
    except OSError:
        return Check("services", "git http", f"nothing on port {port}",
                     f"git push over HTTP is unavailable (nothing listens on port {port})",
                     "systemctl start paas-git-http (or run 'paas git:http-serve'); "
                     "pushes over ssh do not need it", warning=True)


def storage(ctx: Context) -> list[Check]:
    from ..image.usage import UsageCache, human_size

    st = os.statvfs(ctx.paths.root)
    out = [disk_check(ctx.paths.root, st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize)]
    blobs = 0
    blob_dir = os.path.join(ctx.paths.layout, "blobs", "sha256")
    try:
        entries = list(os.scandir(blob_dir))
    except FileNotFoundError:
        entries = []
    for e in entries:
        blobs += e.stat(follow_symlinks=False).st_blocks * 512
    cache = UsageCache(os.path.join(ctx.paths.tmp, "usage-cache.json"))
    unpacked = cache.total()
    layers = f", unpacked layers {human_size(unpacked)}" if unpacked else ""
    out.append(Check("storage", "store", f"blobs {human_size(blobs)}{layers} "
                                         "(details: paas system:df)"))
    return out


def id_ranges(ctx: Context, conn: sqlite3.Connection) -> list[Check]:
    """How layers are shared between id ranges, and the pool apps' ranges come from."""
    from ..apps.idmaps import IdMaps
    from ..image.views import Views, mounted_views

    views = Views(ctx.paths.snapshots, enabled=ctx.idmapped != "off")
    why = views.probe(ctx.idmap)
    if why is None:
        n = len(mounted_views(views.dir)) if os.path.isdir(views.dir) else 0
        out = [Check("id ranges", "layers", f"one copy, idmapped views ({n} mounted)")]
    else:
        out = [Check("id ranges", "layers", f"id-shifted copies per range ({why})")]
    maps = IdMaps(ctx, conn)
    try:
        free = len(maps.free_slots())
    except PaasError as err:
        return [*out, Check("id ranges", "pool", "none", err.message, err.hint)]
    used = maps.slots()
    live = sum(1 for s in used if s.destroyed is None)
    user, (uid_file, gid_file) = ctx.subid_user, ctx.subid_files
    value = (f"{live} app(s), {len(used) - live} kept for destroyed apps, {free} free "
             f"({user} in {uid_file}, {gid_file}); container:run: "
             f"{ctx.idmap.host_id}-{ctx.idmap.host_id + ctx.idmap.size - 1}")
    out.append(Check("id ranges", "pool", value,
                     "" if free else "no id range left for a new app",
                     f"give {user} a larger range in {uid_file} and {gid_file}"))
    from ..subids import overlaps

    clash = [s.app for s in used if s.destroyed is None and overlaps(s.idmap, ctx.idmap)]
    if clash:
        out.append(Check("id ranges", "overlap", ", ".join(clash),
                         f"PAAS_SUBUID overlaps the id range of {', '.join(clash)}: "
                         "container:run's root would own their files",
                         "set PAAS_SUBUID to a range outside the pool (default 100000:65536)"))
    shared = [str(r[0]) for r in conn.execute("SELECT app FROM app_idmap_shared ORDER BY app")]
    if shared:
        out.append(Check("id ranges", "shared", ", ".join(shared),
                         f"{len(shared)} app(s) still run in the shared default range",
                         "each moves to its own range at its next deploy (or ps:rebuild)",
                         warning=True))
    return out


def run_probes(ctx: Context, conn: sqlite3.Connection) -> list[Check]:
    from . import acme, modes
    from .limits import limits

    return [*versions(ctx), *network(ctx, conn), *services(ctx), *limits(ctx), *storage(ctx),
            *id_ranges(ctx, conn), *acme.probe(ctx, conn), *modes.probe(ctx)]
