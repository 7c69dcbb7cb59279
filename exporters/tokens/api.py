"""`POST /v1/events`: the token exporter's usage ingest (single, binary-mode and batch CloudEvents, auth, limits).

A request is checked whole before anything is counted: every event of a batch is validated and
priced first, and one bad event rejects the batch (`400` listing `{index, field, reason}` for each
problem). Accepted events are deduplicated by `(source, id)`, counted, and handed to the `EventSink`
(Kafka `ai-api-costs`, key `team/app`, header `aifinops-counted-in: <cluster>`), which never blocks.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..config import AuthConfig
from ..events.codec import (
    EventError,
    Problem,
    loads,
    lone_surrogate_field,
    long_integer_field,
    may_hold_lone_surrogate,
)
from ..llm.ingest import PricedEvent, UsageIngest
from ..runtime.http import Request, Response, Route
from ..sink import COUNTED_IN_HEADER, EventSink, NullSink, Reservation, ReservingSink
from .ratelimit import RateLimiter, retry_after

log = logging.getLogger(__name__)

PATH = "/v1/events"
SINGLE = ("application/cloudevents+json", "application/json")
BATCH = "application/cloudevents-batch+json"
SOURCE = "http"
# CloudEvents HTTP binary mode: attributes travel as ce-* headers, the body is `data`.
_BINARY_ATTRIBUTES = ("specversion", "id", "source", "type", "time", "subject")
# What a 503 for a full Kafka spool asks the gateway to wait before retrying.
RETRY_AFTER_SECONDS = 5
_SURROGATE_REASON = (
    "holds a lone UTF-16 surrogate (\\ud800-\\udfff escape without its pair), which cannot be "
    "encoded as UTF-8"
)


@dataclass(frozen=True)
class Credential:
    """Who sent a request: the team its token counts for, or a gateway that may name any team."""

    team: str
    gateway: bool = False


class TokenAuth:
    """Bearer tokens checked against their SHA-256 hashes from the config; off means open ingest."""

    def __init__(self, config: AuthConfig) -> None:
        self.enabled = config.enabled
        self._by_hash = {t.sha256: Credential(t.team, t.gateway) for t in config.tokens}

    def authenticate(self, headers: Mapping[str, str]) -> Credential | None:
        """The credential of a valid `Authorization: Bearer` token, else None."""
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self._by_hash.get(hashlib.sha256(token.strip().encode()).hexdigest())


def hash_token(token: str) -> str:
    """The value to put in `tokens.auth.tokens[].sha256` for a bearer token."""
    return hashlib.sha256(token.encode()).hexdigest()


class EventsAPI:
    """The `POST /v1/events` handler; `route()` gives it to the HTTP server."""

    def __init__(
        self,
        ingest: UsageIngest,
        sink: EventSink,
        *,
        topic: str,
        cluster: str,
        auth: AuthConfig,
        max_batch_events: int,
        max_body_bytes: int,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._ingest = ingest
        self._sink = sink
        # Nothing to build for a sink that discards (Kafka off).
        self._publishing = not isinstance(sink, NullSink)
        # A sink that can run out of room (the Kafka producer) is asked for it first.
        self._reserving = sink if self._publishing and isinstance(sink, ReservingSink) else None
        self._topic = topic
        self._headers = {COUNTED_IN_HEADER: cluster.encode()}
        self._auth = TokenAuth(auth)
        self._max_batch_events = max_batch_events
        self._max_body_bytes = max_body_bytes
        self._limiter = limiter

    def route(self) -> Route:
        """The route to register with `runtime.http.HTTPServer`; tokens are checked before the
        body is read, so an unauthenticated client cannot make the exporter read or buffer it."""
        authorize = self._authorize if self._auth.enabled else None
        return Route("POST", PATH, self.handle, self._max_body_bytes, authorize)

    def _authorize(self, headers: Mapping[str, str]) -> Response | None:
        return _unauthorized() if self._auth.authenticate(headers) is None else None

    def handle(self, request: Request) -> Response:
        """Authenticate, decode, validate and price every event, then count and publish them."""
        credential = None
        if self._auth.enabled:
            credential = self._auth.authenticate(request.headers)
            if credential is None:
                return _unauthorized()
        media_type, params = _content_type(request.headers.get("content-type", ""))
        charset = params.get("charset", "utf-8").lower()
        if (media_type not in SINGLE and media_type != BATCH) or charset not in ("utf-8", "utf8"):
            return Response.json(
                415,
                {
                    "error": f"unsupported content type {request.headers.get('content-type', '')!r}",
                    "supported": [*SINGLE, BATCH],
                },
            )
        try:
            body = loads(request.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._ingest.reject(SOURCE)
            return _bad([(None, Problem("", f"body is not valid JSON: {exc}"))])
        except ValueError as exc:
            # Python refuses to convert integers of more than 4,300 digits (CVE-2020-10735).
            self._ingest.reject(SOURCE)
            field = long_integer_field(request.body)
            index, _, rest = field.removeprefix("[").partition("]")
            if field.startswith("[") and index.isdigit():
                return _bad([(int(index), Problem(rest.lstrip("."), str(exc)))])
            return _bad([(None, Problem(field, str(exc)))])
        if media_type == BATCH:
            if not isinstance(body, list):
                self._ingest.reject(SOURCE)
                return _bad([(None, Problem("", "a batch must be a JSON array of events"))])
            if len(body) > self._max_batch_events:
                return Response.json(
                    413,
                    {
                        "error": f"batch of {len(body)} events exceeds the limit of "
                        f"{self._max_batch_events}"
                    },
                )
            events = body
        elif "ce-specversion" in request.headers:
            events = [_from_binary(request.headers, body)]
        elif isinstance(body, list):
            self._ingest.reject(SOURCE, len(body) or 1)
            return _bad([(None, Problem("", f"a JSON array is a batch: send it as {BATCH}"))])
        else:
            events = [body]
        if may_hold_lone_surrogate(request.body):
            # What is counted here must be publishable: no encoder writes a lone surrogate.
            unencodable = [
                (index, Problem(where, _SURROGATE_REASON))
                for index, event in enumerate(events)
                if (where := lone_surrogate_field(event)) is not None
            ]
            if unencodable:
                self._ingest.reject(SOURCE, len(events))
                return _bad(unencodable)
        refusal = self.throttle(request, credential, len(events))
        if refusal is not None:
            return refusal
        return self._accept(events, credential)

    def credential(self, request: Request) -> Credential | None:
        """The credential of a request's bearer token (None with auth off or no valid token);
        the route's `authorize` hook has already refused a request without one."""
        return self._auth.authenticate(request.headers) if self._auth.enabled else None

    def throttle(self, request: Request, credential: Credential | None, n: int) -> Response | None:
        """The 429 (with `Retry-After`) when `n` events exceed the credential's rate limit."""
        if self._limiter is None:
            return None
        wait = self._limiter.take(
            request.headers.get("authorization", "") if credential else request.client,
            n,
            credential.team if credential else "",
        )
        if not wait:
            return None
        return Response.json(
            429,
            {"error": "rate limit of this credential exceeded (tokens.rate_limit)"},
            {"Retry-After": retry_after(wait)},
        )

    def _accept(self, events: list[Any], credential: Credential | None) -> Response:
        now = datetime.now(UTC)
        prepared: list[PricedEvent] = []
        problems: list[tuple[int | None, Problem]] = []
        prepare = self._ingest.prepare
        for index, obj in enumerate(events):
            try:
                prepared.append(prepare(obj, now=now))
            except EventError as exc:
                problems.extend((index, p) for p in exc.problems)
        if problems:
            # All or nothing: nothing of a batch with a bad event is counted or published.
            self._ingest.reject(SOURCE, len(events))
            return _bad(problems)
        counted = self.commit(prepared, credential, SOURCE)
        if counted is None:
            return spool_full()
        return Response.json(
            202, {"accepted": len(counted), "duplicates": len(prepared) - len(counted)}
        )

    def commit(
        self, prepared: list[PricedEvent], credential: Credential | None, source: str
    ) -> list[PricedEvent] | None:
        """Count validated, priced events of one request as `source` and publish them: the
        credential's team wins, duplicates are dropped, Kafka spool room is reserved first.
        Returns those counted, or None when the spool has no room (nothing counted)."""
        if credential is not None and not credential.gateway:
            prepared = [priced.with_team(credential.team) for priced in prepared]
        reservation = None
        if self._reserving is not None:
            # Room first: an event counted here but lost on the way to Kafka would hide spend
            # from the central bridge, so without room nothing is counted and the gateway retries.
            reservation = self._reserve(self._reserving, prepared)
            if reservation is None:
                return None
        counted = self._ingest.apply_all(prepared, source)
        if reservation is not None:
            if len(counted) == len(prepared):
                reservation.commit(range(len(prepared)))
            else:
                fresh = {id(p) for p in counted}
                reservation.commit({i for i, p in enumerate(prepared) if id(p) in fresh})
        elif self._publishing and counted:
            self._publish(counted)
        return counted

    def _reserve(self, sink: ReservingSink, prepared: list[PricedEvent]) -> Reservation | None:
        headers = self._headers
        items = [(p.event.key, p.event.to_cloudevent(), headers) for p in prepared]
        try:
            return sink.reserve(self._topic, items)
        except Exception:
            log.exception("reserving room for %d events on %s failed", len(items), self._topic)
            return None

    def _publish(self, counted: list[PricedEvent]) -> None:
        headers = self._headers
        # One call for a request's events: the Kafka producer queues them at once.
        items = [(p.event.key, p.event.to_cloudevent(), headers) for p in counted]
        try:
            self._sink.publish_many(self._topic, items)
        except Exception:
            # A sink must not raise; if one does, the events are still counted here.
            log.exception("publishing %d events to %s failed", len(items), self._topic)


def _content_type(value: str) -> tuple[str, dict[str, str]]:
    media_type, *rest = value.split(";")
    params = {}
    for part in rest:
        key, _, val = part.partition("=")
        params[key.strip().lower()] = val.strip().strip('"')
    return media_type.strip().lower(), params


def _from_binary(headers: Mapping[str, str], data: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"data": data}
    for name in _BINARY_ATTRIBUTES:
        value = headers.get(f"ce-{name}")
        if value is not None:
            event[name] = value
    return event


def spool_full() -> Response:
    """The 503 asking the client to retry when the Kafka spool has no room."""
    return Response.json(
        503,
        {"error": "the Kafka spool has no room for these events; retry later"},
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _unauthorized() -> Response:
    return Response.json(
        401,
        {"error": "a valid bearer token is required (Authorization: Bearer <token>)"},
        {"WWW-Authenticate": 'Bearer realm="aifinops"'},
    )


def _bad(problems: Sequence[tuple[int | None, Problem]]) -> Response:
    return Response.json(
        400, [{"index": index, "field": p.field, "reason": p.reason} for index, p in problems]
    )
