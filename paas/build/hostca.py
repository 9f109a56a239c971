"""The host's CA bundle in build containers: TLS through a company's inspecting proxy.

Many networks re-sign TLS with their own CA, installed in the host's trust store but
not in a fresh Debian rootfs, so ``pip``/``npm``/``curl`` in a build step fail with
``CERTIFICATE_VERIFY_FAILED``. Every build container (Dockerfile ``RUN`` steps and
buildpack compiles) gets the host's bundle (``PAAS_BUILD_CA_BUNDLE``, default
``/etc/ssl/certs/ca-certificates.crt``; ``off`` turns it off) bind-mounted read-only
at ``CA_TARGET``, and the variables the common tools read point at it (``CA_ENV``).
The bundle is the host's whole trust store (Mozilla's roots plus the local ones), so
pointing ``SSL_CERT_FILE`` at it trusts what the host trusts, no more.

Nothing of it lands in an image: the variables are the container's, not the image
config's, and not part of a step's cache key; the mount point a ``RUN`` step's
container had to create (``/run/paas/...``) is removed from its writable layer before
the layer is made (``Stubs``), as BuildKit removes its mount stubs.

App containers get the same (mount and variables) only when their app opted in
(``ps:set APP host-ca-bundle true``: ``app_bundle``), and keep the mount point stub in
their writable layer (it is never made an image).

Not here: where the bundle comes from at install.
"""

from __future__ import annotations

import os
import posixpath

from ..errors import FailedPrecondition, InvalidArgument
from ..model import BindMount, BindPolicy

__all__ = ["CA_ENV", "CA_TARGET", "DEFAULT_BUNDLE", "Stubs", "app_bundle", "ca_bind", "ca_env",
           "parse_bundle_setting"]

DEFAULT_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
CA_TARGET = "/run/paas/ca-certificates.crt"
# OpenSSL (python, curl, wget, git), pip, requests, node, git, curl
CA_ENV = ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
          "GIT_SSL_CAINFO", "CURL_CA_BUNDLE")
_OFF = ("off", "false", "no", "0", "none")


def parse_bundle_setting(value: str) -> str | None:
    """``PAAS_BUILD_CA_BUNDLE`` (``Context.build_ca``): the bundle's path, or None (off,
    or the default bundle is absent). A path that is set but missing or not absolute is
    an error."""
    value = value.strip()
    if value.lower() in _OFF:
        return None
    if not value:
        return DEFAULT_BUNDLE if os.path.isfile(DEFAULT_BUNDLE) else None
    if not os.path.isabs(value) or not os.path.isfile(value):
        raise InvalidArgument(
            f"PAAS_BUILD_CA_BUNDLE={value!r} is not an absolute path of a file",
            "set it to the host's CA bundle (e.g. /etc/ssl/certs/ca-certificates.crt), "
            "or to off")
    return value


def app_bundle(setting: str) -> str:
    """The bundle an app's containers get when the app opted in (``ps:set APP
    host-ca-bundle true``): ``PAAS_BUILD_CA_BUNDLE``'s file when it names one, else the
    host's default bundle (``off`` turns off what builds get, not an app's opt-in);
    FailedPrecondition when there is none."""
    path = None if setting.strip().lower() in _OFF else parse_bundle_setting(setting)
    if path is None and os.path.isfile(DEFAULT_BUNDLE):
        path = DEFAULT_BUNDLE
    if path is None:
        raise FailedPrecondition(
            f"the app asked for the host's CA bundle, and {DEFAULT_BUNDLE} is missing",
            "install ca-certificates on the host, set PAAS_BUILD_CA_BUNDLE to the bundle, "
            "or 'paas ps:set APP host-ca-bundle false'")
    return path


def ca_bind(bundle: str) -> BindMount:
    """The read-only bind of the host's bundle (a path the operator configured)."""
    return BindMount(bundle, CA_TARGET, readonly=True, policy=BindPolicy.INTERNAL)


def ca_env(env: tuple[str, ...], image_env: tuple[str, ...] = ()) -> tuple[str, ...]:
    """``env`` plus every ``CA_ENV`` variable at ``CA_TARGET`` that neither ``env`` nor the
    image's own ``ENV`` (``image_env``) sets: a Dockerfile's choice wins."""
    given = {e.split("=", 1)[0] for e in (*env, *image_env)}
    return env + tuple(f"{k}={CA_TARGET}" for k in CA_ENV if k not in given)


class Stubs:
    """The components of ``CA_TARGET`` missing from a build container's rootfs before it
    ran: runc creates them as mount points in the writable layer; ``drop`` removes them
    from the layer again (deepest first, only if still empty stubs)."""

    def __init__(self, rootfs: str) -> None:
        self.missing: list[str] = []
        rel = ""
        for part in CA_TARGET.strip("/").split("/"):
            rel = posixpath.join(rel, part)
            if not os.path.lexists(os.path.join(rootfs, rel)):
                self.missing.append(rel)

    def drop(self, upper: str) -> None:
        for rel in reversed(self.missing):
            path = os.path.join(upper, rel)
            if os.path.isdir(path) and not os.path.islink(path):
                if os.listdir(path):
                    return  # the step wrote there itself: keep it and what is above
                os.rmdir(path)
            elif os.path.isfile(path) and not os.path.islink(path):
                if os.path.getsize(path):
                    return
                os.unlink(path)
