"""TLS is one config line away: a pinned CA works, an unpinned or wrong CA does not."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent.config import TlsConfig
from agent.errors import AgentError
from agent.transport.client import CollectorClient, DeliveryError, MachineFacts
from agent.transport.wire import StatusCode
from tests.integration.harness import collector_config, start_collector


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca_and_server_cert(d: Path, name: str) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for `name` signed by it (real openssl)."""
    ca_key, ca_crt = d / f"{name}-ca.key", d / f"{name}-ca.crt"
    key, csr, crt = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.crt"
    ext = d / f"{name}.ext"
    ext.write_text(f"subjectAltName=DNS:{name},IP:127.0.0.1\n")
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", str(ca_key), "-out", str(ca_crt), "-subj", f"/CN={name} test CA",
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", f"/CN={name}",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext),
    )  # fmt: skip
    return ca_crt, crt, key


def test_agent_enrolls_and_submits_over_tls_with_a_pinned_ca(tmp_path: Path) -> None:
    ca, crt, key = make_ca_and_server_cert(tmp_path, "collector.halang.test")
    other_ca, _, _ = make_ca_and_server_cert(tmp_path, "someone.else.test")
    cfg = collector_config(
        tmp_path / "c.db", tls={"enabled": True, "cert_file": str(crt), "key_file": str(key)}
    )
    running = start_collector(cfg)
    facts = MachineFacts("m", "pc", "Linux", "6", "0.1.0")
    pinned = TlsConfig(enabled=True, ca_file=ca, server_name="collector.halang.test")
    try:
        with CollectorClient(running.address, tls=pinned) as c:
            secret = c.enroll(running.token(), facts).secret
        with CollectorClient(running.address, tls=pinned, secret=secret) as c:
            assert c.submit([]).stored == []
        wrong = TlsConfig(enabled=True, ca_file=other_ca, server_name="collector.halang.test")
        with CollectorClient(running.address, tls=wrong, secret=secret, timeout=5) as c:
            with pytest.raises(DeliveryError) as e:
                c.submit([])
            assert e.value.code is StatusCode.UNAVAILABLE
        with CollectorClient(running.address, secret=secret, timeout=5) as plain:
            with pytest.raises(DeliveryError) as e:
                plain.submit([])  # plaintext to a TLS port
            assert e.value.code is StatusCode.UNAVAILABLE
    finally:
        running.app.stop(grace=0)


def make_client_cert(d: Path, ca_name: str, name: str) -> tuple[Path, Path]:
    """An agent certificate for `name` signed by the CA `make_ca_and_server_cert(d, ca_name)`
    made (real openssl)."""
    ca_key, ca_crt = d / f"{ca_name}-ca.key", d / f"{ca_name}-ca.crt"
    key, csr, crt = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.crt"
    ext = d / f"{name}.ext"
    ext.write_text("extendedKeyUsage=clientAuth\n")
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", f"/CN={name}",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext),
    )  # fmt: skip
    return crt, key


def test_mtls_collector_requires_an_agent_certificate_from_its_client_ca(tmp_path: Path) -> None:
    ca, crt, key = make_ca_and_server_cert(tmp_path, "collector.halang.test")
    make_ca_and_server_cert(tmp_path, "agents.halang.test")  # the CA agents' certs come from
    make_ca_and_server_cert(tmp_path, "someone.else.test")
    agent_crt, agent_key = make_client_cert(tmp_path, "agents.halang.test", "pc-thanhnhat-01")
    stranger_crt, stranger_key = make_client_cert(tmp_path, "someone.else.test", "intruder")
    cfg = collector_config(
        tmp_path / "c.db",
        tls={
            "enabled": True,
            "cert_file": str(crt),
            "key_file": str(key),
            "client_ca_file": str(tmp_path / "agents.halang.test-ca.crt"),
        },
    )
    running = start_collector(cfg)
    facts = MachineFacts("m", "pc", "Linux", "6", "0.1.0")

    def tls(cert: Path | None = None, key: Path | None = None) -> TlsConfig:
        return TlsConfig(
            enabled=True,
            ca_file=ca,
            server_name="collector.halang.test",
            cert_file=cert,
            key_file=key,
        )

    try:
        with CollectorClient(running.address, tls=tls(agent_crt, agent_key)) as c:
            secret = c.enroll(running.token(), facts).secret
        with CollectorClient(running.address, tls=tls(agent_crt, agent_key), secret=secret) as c:
            assert c.submit([]).stored == []
        # The credential alone no longer opens the door: no certificate, or one from another CA.
        for cert, cert_key in ((None, None), (stranger_crt, stranger_key)):
            with CollectorClient(
                running.address, tls=tls(cert, cert_key), secret=secret, timeout=5
            ) as c:
                with pytest.raises(DeliveryError) as e:
                    c.submit([])
                assert e.value.code is StatusCode.UNAVAILABLE
                assert "may require a client certificate" in str(e.value), str(e.value)
    finally:
        running.app.stop(grace=0)


def test_mtls_agent_certificate_that_cannot_be_loaded_names_the_keys(tmp_path: Path) -> None:
    ca, _, _ = make_ca_and_server_cert(tmp_path, "collector.halang.test")
    half = TlsConfig(enabled=True, ca_file=ca, cert_file=ca)
    with pytest.raises(AgentError, match=r"collector\.tls\.cert_file and collector\.tls\.key_file"):
        CollectorClient("127.0.0.1:4317", tls=half)
    missing = TlsConfig(enabled=True, ca_file=ca, cert_file=ca, key_file=tmp_path / "none.key")
    with pytest.raises(AgentError, match=r"collector\.tls\.key_file: cannot read .*none\.key"):
        CollectorClient("127.0.0.1:4317", tls=missing)
    wrong = TlsConfig(enabled=True, ca_file=ca, cert_file=ca, key_file=ca)  # a CA cert, no key
    with pytest.raises(AgentError, match=r"collector\.tls\.cert_file/key_file"):
        CollectorClient("127.0.0.1:4317", tls=wrong)
