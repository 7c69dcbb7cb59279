"""`--web.config.file`: TLS and basic auth for the daemons' HTTP server, in the exporter-toolkit format.

The file is the one the Prometheus exporters read (github.com/prometheus/exporter-toolkit,
docs/web-configuration.md)::

    tls_server_config:
      cert_file: /etc/aifinops/tls/tls.crt
      key_file: /etc/aifinops/tls/tls.key
      client_auth_type: RequireAndVerifyClientCert   # optional mutual TLS
      client_ca_file: /etc/aifinops/tls/ca.crt
      min_version: TLS12
    http_server_config:
      headers:
        Strict-Transport-Security: max-age=31536000
    basic_auth_users:
      prometheus: $2b$12$...   # bcrypt hash (htpasswd -nBC 12 "" | tr -d ':\\n')

Certificate and key files are read again when they change on disk (a renewed Secret), as the
toolkit does; a renewal that does not load is logged and the previous certificate kept.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import bcrypt
import yaml

from .buckets import BoundedBuckets, TokenBucket

log = logging.getLogger(__name__)

_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# Go's crypto/tls can ask for a client certificate without verifying it; Python's ssl cannot.
_CLIENT_AUTH_UNSUPPORTED = ("RequestClientCert", "RequireAnyClientCert")
_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_TLS_KEYS = {
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "min_version",
    "max_version",
}
# Headers the toolkit lets a web config set (others are refused there too).
_HEADERS = {
    "Content-Security-Policy",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "X-XSS-Protection",
    "Strict-Transport-Security",
}
_BCRYPT = re.compile(r"^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$")
# htpasswd's own maximum: a check costs about 2^cost * 60 µs, 8 s at 17.
MAX_BCRYPT_COST = 17
# Paths a kubelet probe reaches without credentials; they say nothing but "up".
UNAUTHENTICATED_PATHS = frozenset({"/-/healthy", "/-/ready"})


class WebConfigError(ValueError):
    """A web config file that cannot be used; `problems` lists each one as `path: reason`."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class TLSServerConfig:
    """`tls_server_config`: the certificate to serve and how clients are verified."""

    cert_file: str
    key_file: str
    client_auth_type: str = "NoClientCert"
    client_ca_file: str | None = None
    min_version: str = "TLS12"
    max_version: str | None = None


@dataclass(frozen=True)
class WebSecurity:
    """What a web config asks of the server: TLS, basic-auth users and extra response headers."""

    tls: TLSServerConfig | None = None
    basic_auth_users: Mapping[str, bytes] = field(default_factory=lambda: MappingProxyType({}))
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def load_web_config(path: str | os.PathLike[str]) -> WebSecurity:
    """Read and check a web config file. Raises `WebConfigError` listing every problem."""
    source = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise WebConfigError(source, [f"cannot read: {exc.strerror or exc}"]) from None
    except yaml.YAMLError as exc:
        raise WebConfigError(source, [f"not valid YAML: {exc}"]) from None
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise WebConfigError(source, ["must be a mapping"])
    for key in raw:
        if key not in ("tls_server_config", "basic_auth_users", "http_server_config"):
            problems.append(f"{key}: unknown key")
    tls = _tls(raw.get("tls_server_config"), problems)
    users = _users(raw.get("basic_auth_users"), problems)
    headers = _headers(raw.get("http_server_config"), problems)
    security = WebSecurity(tls, MappingProxyType(users), MappingProxyType(headers))
    if tls is not None and not problems:
        try:
            build_ssl_context(tls)
        except (OSError, ssl.SSLError, ValueError) as exc:
            problems.append(f"tls_server_config: cannot load the certificate or key: {exc}")
    if problems:
        raise WebConfigError(source, problems)
    return security


def _tls(raw: Any, problems: list[str]) -> TLSServerConfig | None:
    if raw is None:
        return None
    where = "tls_server_config"
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping")
        return None
    for key in raw:
        if key not in _TLS_KEYS:
            problems.append(f"{where}.{key}: unknown or unsupported key")
    values: dict[str, str | None] = {}
    for key in _TLS_KEYS:
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            problems.append(f"{where}.{key}: must be a string")
            value = None
        values[key] = value or None
    for key in ("cert_file", "key_file"):
        file = values[key]
        if file is None:
            problems.append(f"{where}.{key}: required")
        elif not os.access(file, os.R_OK):
            problems.append(f"{where}.{key}: cannot read {file}")
    auth = values["client_auth_type"] or "NoClientCert"
    if auth in _CLIENT_AUTH_UNSUPPORTED:
        problems.append(
            f"{where}.client_auth_type: {auth} is not supported "
            "(use VerifyClientCertIfGiven or RequireAndVerifyClientCert)"
        )
    elif auth not in _CLIENT_AUTH:
        problems.append(f"{where}.client_auth_type: must be one of {', '.join(_CLIENT_AUTH)}")
    ca = values["client_ca_file"]
    if auth != "NoClientCert" and ca is None:
        problems.append(f"{where}.client_ca_file: required when client_auth_type is {auth}")
    if ca is not None and not os.access(ca, os.R_OK):
        problems.append(f"{where}.client_ca_file: cannot read {ca}")
    for key in ("min_version", "max_version"):
        version = values[key]
        if version is not None and version not in _VERSIONS:
            problems.append(f"{where}.{key}: must be one of {', '.join(_VERSIONS)}")
    return TLSServerConfig(
        cert_file=values["cert_file"] or "",
        key_file=values["key_file"] or "",
        client_auth_type=auth,
        client_ca_file=ca,
        min_version=values["min_version"] or "TLS12",
        max_version=values["max_version"],
    )


def _users(raw: Any, problems: list[str]) -> dict[str, bytes]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append("basic_auth_users: must be a mapping of user name to bcrypt hash")
        return {}
    users: dict[str, bytes] = {}
    for user, hashed in raw.items():
        where = f"basic_auth_users.{user}"
        if not isinstance(user, str) or not user or ":" in user:
            problems.append(f"{where}: a user name must be a non-empty string without ':'")
        elif not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            problems.append(f"{where}: must be a bcrypt hash ($2a$, $2b$ or $2y$)")
        elif not _BCRYPT.match(hashed):
            problems.append(
                f"{where}: not a valid bcrypt hash ($2b$<cost>$ and 53 characters of ./A-Za-z0-9)"
            )
        elif int(hashed[4:6]) > MAX_BCRYPT_COST:
            # Checked at start and on every uncached login: cost 31 would take days per check.
            problems.append(
                f"{where}: bcrypt cost {int(hashed[4:6])} is over {MAX_BCRYPT_COST} "
                f"(each check would take seconds of CPU; 10 to 12 is usual)"
            )
        else:
            try:
                # A malformed hash raises here rather than on the first login.
                bcrypt.checkpw(b"", hashed.encode())
            except ValueError:
                problems.append(f"{where}: not a valid bcrypt hash")
                continue
            users[user] = hashed.encode()
    return users


def _headers(raw: Any, problems: list[str]) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append("http_server_config: must be a mapping")
        return {}
    headers: dict[str, str] = {}
    for key, value in raw.items():
        if key == "http2":
            continue  # the toolkit's HTTP/2 switch; this server speaks HTTP/1.1 only
        if key != "headers":
            problems.append(f"http_server_config.{key}: unknown key")
            continue
        if not isinstance(value, dict):
            problems.append("http_server_config.headers: must be a mapping")
            continue
        for name, text in value.items():
            if name not in _HEADERS:
                problems.append(
                    f"http_server_config.headers.{name}: not one of {', '.join(sorted(_HEADERS))}"
                )
            elif not isinstance(text, str) or "\r" in text or "\n" in text:
                problems.append(f"http_server_config.headers.{name}: must be a one-line string")
            else:
                headers[name] = text
    return headers


def build_ssl_context(tls: TLSServerConfig) -> ssl.SSLContext:
    """A server-side context for `tls`. Raises `ssl.SSLError` or `OSError` when files do not load."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS[tls.min_version]
    if tls.max_version:
        context.maximum_version = _VERSIONS[tls.max_version]
    context.load_cert_chain(tls.cert_file, tls.key_file)
    context.verify_mode = _CLIENT_AUTH[tls.client_auth_type]
    if tls.client_ca_file:
        context.load_verify_locations(cafile=tls.client_ca_file)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    return context


class TLSContextSource:
    """The current SSL context, rebuilt when the certificate, key or CA file changes on disk."""

    def __init__(self, tls: TLSServerConfig, check_interval: float = 5.0) -> None:
        self._tls = tls
        self._interval = check_interval
        self._files = [f for f in (tls.cert_file, tls.key_file, tls.client_ca_file) if f]
        self._stamp = self._stat()
        self._context = build_ssl_context(tls)
        self._checked = time.monotonic()

    def _stat(self) -> tuple[tuple[int, int], ...]:
        stamps = []
        for file in self._files:
            try:
                st = os.stat(file)
                stamps.append((st.st_mtime_ns, st.st_size))
            except OSError:
                stamps.append((0, 0))
        return tuple(stamps)

    def context(self) -> ssl.SSLContext:
        """The context to wrap the next connection with."""
        now = time.monotonic()
        if now - self._checked >= self._interval:
            self._checked = now
            stamp = self._stat()
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._context = build_ssl_context(self._tls)
                    log.info("web config: reloaded the TLS certificate %s", self._tls.cert_file)
                except (OSError, ssl.SSLError, ValueError) as exc:
                    log.error(
                        "web config: the changed TLS files do not load (%s); keeping the "
                        "previous certificate",
                        exc,
                    )
        return self._context


# Failed basic-auth checks allowed per client address and for all clients together (each costs
# a bcrypt check, about 60 ms of CPU at cost 10 and 250 ms at cost 12): one a second after a burst
# of 10 per address, five a second after a burst of 20 in all.
AUTH_FAILURES_PER_SECOND = 1.0
AUTH_FAILURE_BURST = 10.0
AUTH_TOTAL_FAILURES_PER_SECOND = 5.0
AUTH_TOTAL_FAILURE_BURST = 20.0
# Client addresses whose failures are remembered; the least recently seen is forgotten first.
AUTH_MAX_CLIENTS = 4096
# Why a request was refused by basic auth: the label values of aifinops_http_auth_refused_total.
AUTH_REFUSAL_REASONS = ("missing", "invalid", "rate_limited")


class FailureLimiter:
    """Token buckets that bound how many failed credential checks clients can make.

    One bucket per client address (at most `max_clients` of them, the least recently seen dropped
    first, so memory is bounded) and one for all clients together (so many addresses cannot add up
    to more). A check takes a token from both before it runs and gives them back when the
    credentials were right: only failures spend tokens, and a right password is never throttled
    while it has tokens left.
    """

    def __init__(
        self,
        per_client_rate: float = AUTH_FAILURES_PER_SECOND,
        per_client_burst: float = AUTH_FAILURE_BURST,
        total_rate: float = AUTH_TOTAL_FAILURES_PER_SECOND,
        total_burst: float = AUTH_TOTAL_FAILURE_BURST,
        max_clients: int = AUTH_MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if min(per_client_rate, per_client_burst, total_rate, total_burst) <= 0 or max_clients < 1:
            raise ValueError("rates and bursts must be positive and max_clients at least 1")
        self._clock = clock
        self._lock = threading.Lock()
        self._clients = BoundedBuckets(per_client_rate, per_client_burst, max_clients)
        self._total = TokenBucket(total_rate, total_burst, clock())

    def __len__(self) -> int:
        """How many client addresses are remembered (never more than `max_clients`)."""
        with self._lock:
            return len(self._clients)

    def acquire(self, client: str) -> float:
        """Take a token for one check by `client`: 0.0 when taken, else the seconds until one is
        available (the check must not run)."""
        with self._lock:
            now = self._clock()
            bucket = self._clients.get(client, now)
            self._total.refill(now)
            wait = bucket.wait_for(1) or self._total.wait_for(1)
            if wait == 0.0:
                bucket.tokens -= 1
                self._total.tokens -= 1
            return wait

    def refund(self, client: str) -> None:
        """Give back the tokens of a check whose credentials were right."""
        with self._lock:
            bucket = self._clients.peek(client)
            if bucket is not None:
                bucket.give_back(1)
            self._total.give_back(1)


@dataclass(frozen=True)
class AuthDecision:
    """The answer to one request's credentials: `ok`, or refused for `reason` (one of
    `AUTH_REFUSAL_REASONS`); `retry_after` seconds are set when it was `rate_limited`."""

    ok: bool
    reason: str = ""
    retry_after: float = 0.0


class BasicAuth:
    """Checks `Authorization: Basic` against bcrypt hashes; remembers recent successes and bounds
    what failures can cost.

    bcrypt costs tens of milliseconds by design; Prometheus sends the same credentials every
    scrape, so a verified (user, password) pair is kept (as a keyed digest, never the password)
    in a small LRU, as the exporter toolkit does. Only verified pairs enter it, so no flood of
    wrong ones evicts them. Credentials not in it are checked under a `FailureLimiter`: a client
    (or all clients together) past its budget of failed checks is refused without a check.
    """

    def __init__(
        self,
        users: Mapping[str, bytes],
        cache_size: int = 256,
        limiter: FailureLimiter | None = None,
    ) -> None:
        self._users = dict(users)
        self._key = os.urandom(32)
        self._cache: OrderedDict[bytes, None] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._limiter = limiter if limiter is not None else FailureLimiter()
        self._refused = dict.fromkeys(AUTH_REFUSAL_REASONS, 0)
        # Unknown users cost a bcrypt check at the users' own cost too, so timing does not tell
        # which names exist.
        cost = max((_cost(h) for h in self._users.values()), default=10)
        self._dummy = bcrypt.hashpw(b"dummy", bcrypt.gensalt(rounds=cost)) if self._users else b""

    @property
    def enabled(self) -> bool:
        """Whether any user is configured (else every request passes)."""
        return bool(self._users)

    def cached(self) -> int:
        """How many verified credentials are remembered (never more than `cache_size`)."""
        with self._lock:
            return len(self._cache)

    def refused(self) -> dict[str, int]:
        """Requests refused so far, by reason."""
        with self._lock:
            return dict(self._refused)

    def check(self, authorization: str) -> bool:
        """Whether an `Authorization` header value carries valid basic credentials (no limit)."""
        return self._verify(authorization, None).ok

    def authenticate(self, authorization: str, client: str) -> AuthDecision:
        """Check the credentials of a request from address `client`, within its failure budget."""
        decision = self._verify(authorization, client)
        if not decision.ok:
            with self._lock:
                self._refused[decision.reason] += 1
        return decision

    def _verify(self, authorization: str, client: str | None) -> AuthDecision:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return AuthDecision(False, "missing")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return AuthDecision(False, "missing")
        user_bytes, sep, password = decoded.partition(b":")
        if not sep:
            return AuthDecision(False, "missing")
        user = user_bytes.decode("utf-8", "replace")
        digest = hmac.new(self._key, decoded, hashlib.sha256).digest()
        with self._lock:
            if digest in self._cache:
                self._cache.move_to_end(digest)
                return AuthDecision(True)
        if client is not None:
            wait = self._limiter.acquire(client)
            if wait > 0:
                return AuthDecision(False, "rate_limited", wait)
        hashed = self._users.get(user)
        try:
            ok = bcrypt.checkpw(password, hashed if hashed is not None else self._dummy)
        except ValueError:  # a password over bcrypt's 72 bytes
            ok = False
        if not ok or hashed is None:
            return AuthDecision(False, "invalid")
        if client is not None:
            self._limiter.refund(client)
        with self._lock:
            self._cache[digest] = None
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return AuthDecision(True)


def _cost(hashed: bytes) -> int:
    """The cost (log2 rounds) of a checked bcrypt hash."""
    return int(hashed[4:6])
