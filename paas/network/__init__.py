"""The bridge network of an instance: one Linux bridge, per-container netns + veth, NAT.

Covered: bridge and subnet choice (``settings``, ``subnet``), IPAM and port
bookkeeping in the state DB (``ipam``), ``-p`` parsing and host-port probes
(``ports``), iptables rule builders and the planner that diffs them against
``iptables-save`` (``rules``), ``ip``/netns argv builders and executors
(``links``), the container resolv.conf (``dns``) and the orchestration
(``bridge.BridgeNetwork``).

Not covered: IPv6, user-defined networks, several bridges per instance, host
ports held open by a userland proxy (published ports are DNAT rules only).
Nothing here imports pyroute2: everything is ``ip``/``iptables`` argv lists,
so the CLI can import this package cheaply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .bridge import BridgeNetwork
    from .dns import resolv_conf_for_bridge
    from .ports import Attachment, PortMapping, parse_publish

__all__ = ["Attachment", "BridgeNetwork", "PortMapping", "parse_publish", "resolv_conf_for_bridge"]

_WHERE = {"BridgeNetwork": "bridge", "resolv_conf_for_bridge": "dns", "Attachment": "ports",
          "PortMapping": "ports", "parse_publish": "ports"}


def __getattr__(name: str) -> Any:
    # lazy: `paas.network.ports` (flag parsing on the CLI) must not import the bridge code
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(name)
