"""``paas report`` (alias ``paas doctor``): versions, cgroup mode, the bridge and its rules,
paasd, nginx, git over HTTP, disk and store, in Dokku's ``=====>`` sections; then each
problem with its fix. Exit status 1 when there is a problem (warnings do not count).
``--fix`` repairs what it can first: the bridge and its iptables rules, and file modes
under ``PAAS_ROOT`` (``paas.doctor.modes``).

Not here: the probes (``paas.doctor``).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from .render import emit_json

if TYPE_CHECKING:
    from ..doctor.checks import Check
    from .main import App, Handler
    from .parser import Parser

__all__ = ["configure", "report_lines"]

TITLES = {"versions": "paas report", "network": "network", "services": "services",
          "storage": "storage", "letsencrypt": "letsencrypt", "permissions": "permissions"}


def report_lines(checks: list[Check], root: str) -> list[str]:
    """Pure: the sections, then ``=====> N problem(s)`` with `` !`` lines and fixes."""
    lines: list[str] = []
    width = max((len(c.name) for c in checks), default=0) + 1
    section = ""
    for c in checks:
        if c.section != section:
            section = c.section
            title = TITLES.get(section, section)
            lines.append(f"=====> {title} ({root})" if section == "versions" else f"=====> {title}")
        mark = "" if c.ok else ("  (warning)" if c.warning else "  (problem)")
        lines.append(f"       {c.name + ':':<{width}} {c.value}{mark}".rstrip())
    problems = [c for c in checks if not c.ok]
    failing = [c for c in problems if not c.warning]
    if not problems:
        lines.append("=====> no problems found")
        return lines
    lines.append(f"=====> {len(failing)} problem{'s' if len(failing) != 1 else ''}"
                 + (f", {len(problems) - len(failing)} warning"
                    f"{'s' if len(problems) - len(failing) != 1 else ''}"
                    if len(problems) > len(failing) else ""))
    for c in problems:
        lines.append(f" !     {c.problem}")
        lines.append(f"       fix: {c.fix}")
    return lines


def _json(checks: list[Check], root: str) -> dict[str, Any]:
    return {
        "root": root,
        "checks": [{"section": c.section, "name": c.name, "value": c.value, "ok": c.ok,
                    "problem": c.problem, "fix": c.fix, "warning": c.warning}
                   for c in checks],
        "problems": sum(1 for c in checks if not c.ok and not c.warning),
        "warnings": sum(1 for c in checks if not c.ok and c.warning),
    }


def _report(app: App, a: argparse.Namespace) -> int:
    from ..doctor.probes import repair_network, run_probes

    if a.fix:
        from ..doctor.modes import repair_instance

        sys.stderr.write("-----> Setting up the bridge and its iptables rules (again)\n")
        repair_network(app.ctx, app.conn)
        fixed = repair_instance(app.ctx)
        sys.stderr.write(f"-----> Made {len(fixed)} path{'s' if len(fixed) != 1 else ''} "
                         f"under {app.ctx.paths.root} root-only\n")
        from ..doctor.limits import repair_limits

        sys.stderr.write("-----> Capping the containers' memory (again)\n")
        repair_limits(app.ctx)
    checks = run_probes(app.ctx, app.conn)
    root = app.ctx.paths.root
    if a.format == "json":
        emit_json(_json(checks, root))
    else:
        print("\n".join(report_lines(checks, root)))
    return 1 if any(not c.ok and not c.warning for c in checks) else 0


def configure(name: str, p: Parser) -> Handler:
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--fix", action="store_true",
                   help="first set up the bridge and install its iptables rules again, and "
                        "make what is too open under PAAS_ROOT root-only")
    return _report
