"""The pure checks of ``paas.certs.validate``, the self-signed generator and the tar
reader: every bad input is one ``InvalidArgument`` naming what is wrong."""

from __future__ import annotations

import io
import tarfile
from datetime import timedelta

import pytest
from pki import NOW, Pki, key_pem, pem

from paas.certs.bundle import from_tar
from paas.certs.selfsigned import generate
from paas.certs.validate import check, covers, uncovered
from paas.errors import InvalidArgument

PKI = Pki()
DOMAINS = ["web.example.com", "www.example.com"]


def test_a_good_chain_passes_and_is_normalized() -> None:
    chain, key = PKI.leaf(*DOMAINS)
    got = check(chain, key, DOMAINS, NOW)
    assert got.domains == tuple(DOMAINS)
    assert got.subject == "web.example.com" and got.issuer == "Test Intermediate"
    assert got.pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert got.pem.count(b"BEGIN CERTIFICATE") == 2 and got.pem.endswith(pem(PKI.inter))
    assert len(got.fingerprint) == 64
    assert got.not_after > NOW > got.not_before


def test_extra_text_around_pem_blocks_is_dropped() -> None:
    chain, key = PKI.leaf("web.example.com")
    got = check(b"subject=CN = web\n" + chain + b"\ntrailing\n", b"Bag Attributes\n" + key,
                ["web.example.com"], NOW)
    assert b"Bag" not in got.pem and b"subject=" not in got.pem


@pytest.mark.parametrize(("names", "domain", "ok"), [
    (["*.example.com"], "a.example.com", True),
    (["*.example.com"], "example.com", False),
    (["*.example.com"], "a.b.example.com", False),
    (["*.example.com"], "*.example.com", True),
    (["*.example.com"], "*.a.example.com", False),
    (["a.example.com"], "A.Example.COM.", True),
    (["example.com"], "a.example.com", False),
    (["*.b.example.com"], "a.example.com", False),
])
def test_wildcards_cover_one_label(names: list[str], domain: str, ok: bool) -> None:
    assert covers(names, domain) is ok


def _refused(chain: bytes, key: bytes, match: str, domains: list[str] = DOMAINS) -> str:
    with pytest.raises(InvalidArgument, match=match) as ei:
        check(chain, key, domains, NOW)
    line = ei.value.render()
    assert "\n" not in line and ei.value.hint
    return line


def test_certificate_for_another_domain() -> None:
    chain, key = PKI.leaf("other.example.net")
    line = _refused(chain, key, "does not cover web.example.com, www.example.com")
    assert "other.example.net" in line
    assert uncovered(["*.example.com"], ["a.example.com", "example.com"]) == ["example.com"]


def test_expired_and_not_yet_valid() -> None:
    chain, key = PKI.leaf(*DOMAINS, start=NOW - timedelta(days=100),
                          end=NOW - timedelta(days=10))
    _refused(chain, key, "the certificate .* expired on")
    chain, key = PKI.leaf(*DOMAINS, start=NOW + timedelta(days=2))
    _refused(chain, key, "is not valid before")


def test_key_that_does_not_match() -> None:
    chain, _ = PKI.leaf(*DOMAINS)
    _, other = PKI.leaf(*DOMAINS)
    _refused(chain, other, "the private key does not match the certificate")


def test_unordered_chain() -> None:
    chain, key = PKI.leaf(*DOMAINS)
    leaf = PKI.leaf_only(chain)
    _refused(pem(PKI.inter) + leaf, key, "does not match")  # the leaf is not first
    _refused(leaf + pem(PKI.root) + pem(PKI.inter), key, "chain is not in order: certificate 1")
    other = Pki()
    _refused(leaf + pem(other.inter), key, "not issued by certificate 2")


@pytest.mark.parametrize(("chain", "key", "match"), [
    (b"hello", None, "holds no PEM certificate"),
    (b"", None, "holds no PEM certificate"),
    (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", None,
     "certificate 1 of the certificate file is not valid PEM"),
    (None, b"garbage", "holds no PEM private key"),
    (None, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
     "private key is not valid PEM"),
    (None, b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
     "encrypted"),
])
def test_garbage_pem(chain: bytes | None, key: bytes | None, match: str) -> None:
    good_chain, good_key = PKI.leaf(*DOMAINS)
    _refused(good_chain if chain is None else chain, good_key if key is None else key, match)


def test_key_in_the_certificate_file_and_two_keys() -> None:
    chain, key = PKI.leaf(*DOMAINS)
    _refused(chain + key, key, "certificate file holds a private key")
    _refused(chain, key + key, "more than one private key")


def test_no_subject_alt_name() -> None:
    chain, key = PKI.leaf(cn="web.example.com")
    _refused(chain, key, "names no DNS domain")


def test_self_signed_covers_its_domains_and_passes() -> None:
    chain, key = generate(["web.example.com", "*.web.example.org"], NOW)
    got = check(chain, key, ["web.example.com", "*.web.example.org", "a.web.example.org"], NOW)
    assert got.issuer == got.subject == "web.example.com"
    assert got.not_after - NOW > timedelta(days=364)
    with pytest.raises(InvalidArgument):
        generate([], NOW)


def _tar(files: dict[str, bytes], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:  # type: ignore[call-overload]
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_tar_like_dokku() -> None:
    chain, key = PKI.leaf(*DOMAINS)
    assert from_tar(_tar({"server.crt": chain, "server.key": key})) == (chain, key)
    assert from_tar(_tar({"./certs/server.crt": chain, "./certs/server.key": key,
                          "README": b"x"}, "w:gz")) == (chain, key)


@pytest.mark.parametrize(("data", "match"), [
    (b"not a tar at all", "not a tar archive"),
    (b"", "not a tar archive"),
    (_tar({"server.crt": b"x"}), "has no server.key"),
    (_tar({"a/b/server.crt": b"x", "a/b/server.key": b"y"}), "no server.crt or server.key"),
])
def test_bad_tars(data: bytes, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        from_tar(data)


def test_tar_links_refused() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("server.key")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/shadow"
        tar.addfile(info)
    with pytest.raises(InvalidArgument, match="not a small regular file"):
        from_tar(buf.getvalue())


def test_key_pem_helper_roundtrip() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    k = ec.generate_private_key(ec.SECP256R1())
    assert key_pem(k).startswith(b"-----BEGIN PRIVATE KEY-----")
