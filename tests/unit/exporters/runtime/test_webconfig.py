"""`--web.config.file` parsing and checks, and basic auth against bcrypt hashes."""

from __future__ import annotations

import base64
import http.client
import ssl
import subprocess
from pathlib import Path

import bcrypt
import pytest
from prometheus_client import CollectorRegistry

from aifinops.exporters.runtime.http import HTTPServer
from aifinops.exporters.runtime.webconfig import (
    BasicAuth,
    FailureLimiter,
    WebConfigError,
    load_web_config,
)

HASH = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode()


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("tls")
    crt, key = directory / "tls.crt", directory / "tls.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "1", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(key), "-out", str(crt),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return crt, key


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "web.yml"
    path.write_text(text)
    return path


def test_a_full_config_loads(tmp_path, cert):
    crt, key = cert
    config = load_web_config(
        write(
            tmp_path,
            f"tls_server_config:\n  cert_file: {crt}\n  key_file: {key}\n"
            f"  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: {crt}\n"
            f"  min_version: TLS13\n"
            f"http_server_config:\n  headers:\n    Strict-Transport-Security: max-age=60\n"
            f"basic_auth_users:\n  prom: '{HASH}'\n",
        )
    )
    assert config.tls is not None and config.tls.min_version == "TLS13"
    assert set(config.basic_auth_users) == {"prom"}
    assert config.headers == {"Strict-Transport-Security": "max-age=60"}


def test_every_problem_is_listed(tmp_path):
    with pytest.raises(WebConfigError) as caught:
        load_web_config(
            write(
                tmp_path,
                "tls_server_config:\n  key_file: /nope.key\n  client_auth_type: RequireAnyClientCert\n"
                "  cipher_suites: [TLS_AES_128_GCM_SHA256]\n"
                "basic_auth_users:\n  a: '$2b$12$short'\n  'b:c': x\n"
                "http_server_config:\n  headers:\n    Server: x\n",
            )
        )
    problems = "\n".join(caught.value.problems)
    for expected in (
        "tls_server_config.cert_file: required",
        "tls_server_config.key_file: cannot read /nope.key",
        "tls_server_config.client_auth_type: RequireAnyClientCert is not supported",
        "tls_server_config.cipher_suites: unknown or unsupported key",
        "basic_auth_users.a: not a valid bcrypt hash",
        "basic_auth_users.b:c: a user name must be",
        "http_server_config.headers.Server: not one of",
    ):
        assert expected in problems


def test_a_key_that_does_not_match_the_certificate_is_refused(tmp_path, cert):
    crt, _ = cert
    other = tmp_path / "other.key"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-out", str(other)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    with pytest.raises(WebConfigError, match="cannot load the certificate or key"):
        load_web_config(
            write(tmp_path, f"tls_server_config:\n  cert_file: {crt}\n  key_file: {other}\n")
        )


def test_unreadable_or_malformed_files(tmp_path):
    with pytest.raises(WebConfigError, match="cannot read"):
        load_web_config(tmp_path / "missing.yml")
    with pytest.raises(WebConfigError, match="not valid YAML"):
        load_web_config(write(tmp_path, "a: [\n"))


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_auth_checks_bcrypt_and_refuses_the_rest():
    auth = BasicAuth({"prom": HASH.encode()})
    assert auth.check(basic("prom", "secret"))
    assert auth.check(basic("prom", "secret"))  # from the cache
    assert not auth.check(basic("prom", "wrong"))
    assert not auth.check(basic("other", "secret"))
    assert not auth.check(basic("prom", "x" * 100))  # over bcrypt's 72 bytes
    assert not auth.check("Bearer abc")
    assert not auth.check("Basic !!!")
    assert not auth.check("Basic " + base64.b64encode(b"no-colon").decode())


def test_tls_server_with_basic_auth_and_headers(tmp_path, cert):
    crt, key = cert
    security = load_web_config(
        write(
            tmp_path,
            f"tls_server_config:\n  cert_file: {crt}\n  key_file: {key}\n"
            f"http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
            f"basic_auth_users:\n  prom: '{HASH}'\n",
        )
    )
    server = HTTPServer("127.0.0.1:0", CollectorRegistry(), security=security)
    server.start()
    try:
        context = ssl.create_default_context(cafile=str(crt))

        def get(path: str, auth: str | None = None) -> http.client.HTTPResponse:
            conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=context, timeout=5)
            conn.request("GET", path, headers={"Authorization": auth} if auth else {})
            resp = conn.getresponse()
            resp.read()
            conn.close()
            return resp

        assert server.url.startswith("https://")
        assert get("/metrics").status == 401
        assert get("/metrics", basic("prom", "nope")).status == 401
        ok = get("/metrics", basic("prom", "secret"))
        assert ok.status == 200
        assert ok.getheader("X-Frame-Options") == "deny"
        # Probes need no credentials: they learn nothing but "up".
        assert get("/-/healthy").status == 200
        assert get("/-/ready").status == 200
    finally:
        server.stop()


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failed_checks_are_limited_per_address_and_in_all():
    clock = Clock()
    limiter = FailureLimiter(
        per_client_rate=1.0, per_client_burst=3, total_rate=0.5, total_burst=5, clock=clock
    )
    assert [limiter.acquire("10.0.0.1") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("10.0.0.1") == pytest.approx(1.0)  # seconds until a token is back
    limiter.refund("10.0.0.1")  # a right password gives its token back
    assert limiter.acquire("10.0.0.1") == 0.0
    clock.now += 1.0
    assert limiter.acquire("10.0.0.1") == 0.0  # refilled at 1 a second
    # All addresses together: 5 taken, 1 refunded, 0.5 refilled in the second: 0.5 left.
    assert limiter.acquire("10.0.0.2") == 0.0
    assert limiter.acquire("10.0.0.3") == pytest.approx(1.0)  # a fresh address, but none in all
    clock.now += 1.0
    assert limiter.acquire("10.0.0.3") == 0.0


def test_the_failure_table_keeps_at_most_max_clients_addresses():
    limiter = FailureLimiter(total_burst=1e9, total_rate=1e9, max_clients=100)
    for i in range(5000):
        limiter.acquire(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter) == 100


def test_a_flood_of_wrong_passwords_is_refused_without_a_check_but_the_right_one_passes():
    clock = Clock()
    limiter = FailureLimiter(per_client_burst=5, total_burst=100, clock=clock)
    auth = BasicAuth({"prom": HASH.encode()}, limiter=limiter)
    assert auth.authenticate(basic("prom", "secret"), "10.0.0.1").ok  # now cached
    decisions = [auth.authenticate(basic("prom", f"guess-{i}"), "10.0.0.1") for i in range(50)]
    assert [d.reason for d in decisions[:5]] == ["invalid"] * 5
    assert {d.reason for d in decisions[5:]} == {"rate_limited"}
    assert decisions[-1].retry_after == pytest.approx(1.0)
    # The cached right password from the same address is not throttled.
    assert auth.authenticate(basic("prom", "secret"), "10.0.0.1").ok
    # Another address still has its own budget.
    assert auth.authenticate(basic("prom", "wrong"), "10.0.0.2").reason == "invalid"
    assert auth.authenticate("", "10.0.0.2").reason == "missing"
    assert auth.refused() == {"missing": 1, "invalid": 6, "rate_limited": 45}


def test_only_verified_credentials_are_cached_and_the_cache_is_bounded():
    users = {f"u{i}": bcrypt.hashpw(f"p{i}".encode(), bcrypt.gensalt(rounds=4)) for i in range(5)}
    auth = BasicAuth(users, cache_size=3, limiter=FailureLimiter(total_burst=1e6))
    for i in range(5):
        assert auth.authenticate(basic(f"u{i}", f"p{i}"), "10.0.0.1").ok
    assert auth.cached() == 3
    for i in range(20):
        assert not auth.authenticate(basic("u0", f"x{i}"), f"10.1.0.{i}").ok
    assert auth.cached() == 3
