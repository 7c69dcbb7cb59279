"""The configuration schema every aifinops process reads: one YAML file, one frozen dataclass per section.

Each daemon reads the sections it needs and ignores the rest, so one file (one ConfigMap) can serve
all three. Every key can be overridden by `AIFINOPS_<SECTION>_<KEY>` (see `runtime.config`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal

from .checks import check, parse_rates, price_rule_problems
from .runtime.config import checked
from .runtime.http import AddressError, parse_address

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
# sun_path holds 108 bytes with its terminating NUL (Linux): a longer socket path cannot be bound.
MAX_UNIX_SOCKET_PATH = 107

LogLevel = Literal["debug", "info", "warn", "error"]


@dataclass(frozen=True)
class WebConfig:
    """Where and how a daemon serves HTTP. Unset `listen_address` means the daemon's default port
    (9871, 9872 or 9873); the limits bound what any client can hold (docs/deploy.md)."""

    listen_address: str | None = None
    # Exporter-toolkit web config (TLS, basic auth); the flag --web.config.file sets it.
    config_file: str | None = None
    max_connections: int = 512
    workers: int = 16
    header_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 30.0
    idle_timeout_seconds: float = 60.0
    max_header_bytes: int = 16384

    def validate(self) -> list[tuple[str, str]]:
        """A bindable `HOST:PORT` (so `aifinops config` refuses what the daemon could not bind),
        and limits that leave the server able to serve."""
        problems: list[tuple[str, str]] = []
        if self.listen_address is not None:
            try:
                parse_address(self.listen_address)
            except AddressError as exc:
                problems.append(("listen_address", str(exc)))
        return (
            problems
            + check(self.max_connections >= 8, "max_connections", "must be at least 8")
            + check(1 <= self.workers <= 256, "workers", "must be 1 to 256")
            + check(self.header_timeout_seconds > 0, "header_timeout_seconds", "must be above 0")
            + check(self.read_timeout_seconds > 0, "read_timeout_seconds", "must be above 0")
            + check(self.idle_timeout_seconds > 0, "idle_timeout_seconds", "must be above 0")
            + check(
                1024 <= self.max_header_bytes <= 1 << 20,
                "max_header_bytes",
                "must be 1024 to 1048576",
            )
        )


@dataclass(frozen=True)
class LogConfig:
    """Log verbosity and line format."""

    level: LogLevel = "info"
    format: Literal["logfmt", "json"] = "logfmt"


@dataclass(frozen=True)
class TopicConfig:
    """One Kafka topic: name, partitions, replication and retention."""

    name: str
    partitions: int
    retention_ms: int
    replication_factor: int = 1

    def validate(self) -> list[tuple[str, str]]:
        """Kafka's own limits on names and sizes."""
        return (
            check(bool(_TOPIC.match(self.name)), "name", "must be 1-249 of [A-Za-z0-9._-]")
            + check(self.partitions >= 1, "partitions", "must be at least 1")
            + check(self.replication_factor >= 1, "replication_factor", "must be at least 1")
            + check(self.retention_ms >= -1, "retention_ms", "must be -1 (forever) or more")
        )


_DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicsConfig:
    """The topics of docs/architecture.md with their defaults."""

    usage: TopicConfig = TopicConfig("ai-api-costs", 10, _DAY_MS)
    gpu: TopicConfig = TopicConfig("gpu-utilization-events", 10, _DAY_MS)
    anomalies: TopicConfig = TopicConfig("cost-anomalies", 3, 7 * _DAY_MS)
    usage_dlq: TopicConfig = TopicConfig("ai-api-costs.dlq", 1, 7 * _DAY_MS)
    gpu_dlq: TopicConfig = TopicConfig("gpu-utilization-events.dlq", 1, 7 * _DAY_MS)


@dataclass(frozen=True)
class KafkaConfig:
    """How to reach the Kafka cluster. Mirroring is off while `bootstrap_servers` is empty."""

    bootstrap_servers: tuple[str, ...] = ()
    client_id: str = "aifinops"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    # A file holding the password (a mounted Secret), so it never sits in the config itself.
    sasl_password_file: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    topics: TopicsConfig = TopicsConfig()

    def validate(self) -> list[tuple[str, str]]:
        """SASL needs a mechanism and credentials."""
        problems: list[tuple[str, str]] = []
        for i, server in enumerate(self.bootstrap_servers):
            host, sep, port = server.rpartition(":")
            problems += check(
                bool(sep and host and port.isdigit()),
                f"bootstrap_servers[{i}]",
                "must be HOST:PORT",
            )
        if self.security_protocol.startswith("SASL"):
            problems += check(
                self.sasl_mechanism is not None, "sasl_mechanism", "required for SASL"
            )
            problems += check(self.sasl_username is not None, "sasl_username", "required for SASL")
            problems += check(
                self.sasl_password_file is not None, "sasl_password_file", "required for SASL"
            )
        return problems


@dataclass(frozen=True)
class AuthToken:
    """One ingest credential: the SHA-256 of a bearer token and the team it counts for."""

    sha256: str
    team: str
    # A gateway's token may attribute events to any team; a team's token always counts for its team.
    gateway: bool = False

    def validate(self) -> list[tuple[str, str]]:
        """The hash must be 64 lower-case hex digits (`sha256sum` output)."""
        return check(bool(_SHA256.match(self.sha256)), "sha256", "must be 64 lower-case hex digits")


@dataclass(frozen=True)
class AuthConfig:
    """Bearer-token authentication of `POST /v1/events`; off by default."""

    enabled: bool = False
    tokens: tuple[AuthToken, ...] = ()

    def validate(self) -> list[tuple[str, str]]:
        """Auth on with no token would lock every client out."""
        return check(
            not self.enabled or bool(self.tokens), "tokens", "at least one token when enabled"
        )


@dataclass(frozen=True)
class RateLimitConfig:
    """Ingest rate limit per credential (bearer token; client address with auth off): a token
    bucket refilled at `events_per_second` holding `burst` events. 0 events/s: no limit."""

    events_per_second: float = 0.0
    burst: int = 10_000
    # Credentials tracked at once (least recently used forgotten first).
    max_buckets: int = 10_000

    def validate(self) -> list[tuple[str, str]]:
        """Rates are not negative; a bucket holds at least one event."""
        return (
            check(self.events_per_second >= 0, "events_per_second", "must be 0 (off) or more")
            + check(self.burst >= 1, "burst", "must be at least 1")
            + check(self.max_buckets >= 1, "max_buckets", "must be at least 1")
        )


@dataclass(frozen=True)
class OTLPConfig:
    """OTLP/HTTP ingest of OpenTelemetry GenAI spans and metrics (docs/otlp.md)."""

    # POST /v1/traces: one usage event per span with GenAI usage.
    traces: bool = True
    # POST /v1/metrics: token metrics priced at base rates; off, since spans count exactly.
    metrics: bool = False
    # Span, else resource, attributes naming the team and the app (first one set wins).
    team_attributes: tuple[str, ...] = ("aifinops.team", "team")
    app_attributes: tuple[str, ...] = ("service.name",)
    # No team attribute: map the resource's k8s.namespace.name through gpu.namespace_teams.
    namespace_teams: bool = True
    # Instrumentation scope names (prefixes) or telemetry.sdk.name values whose
    # gen_ai.usage.input_tokens leave cached tokens out, in addition to the built-in table.
    input_excludes_cache: tuple[str, ...] = ()
    # Request bodies, compressed and decompressed alike.
    max_body_bytes: int = 4 << 20
    # Cumulative metric streams (and span-sending resources) remembered at once.
    max_streams: int = 10_000
    # A resource that sent GenAI spans within this long is ignored on the metrics path.
    span_resource_ttl_seconds: float = 3600.0

    def validate(self) -> list[tuple[str, str]]:
        """Attribute lists name something; limits are positive."""
        return (
            check(
                bool(self.team_attributes) and all(self.team_attributes),
                "team_attributes",
                "at least one non-empty attribute name",
            )
            + check(
                bool(self.app_attributes) and all(self.app_attributes),
                "app_attributes",
                "at least one non-empty attribute name",
            )
            + check(self.max_body_bytes >= 1024, "max_body_bytes", "must be at least 1024")
            + check(self.max_streams >= 1, "max_streams", "must be at least 1")
            + check(
                self.span_resource_ttl_seconds >= 0,
                "span_resource_ttl_seconds",
                "must be 0 or more",
            )
        )


@dataclass(frozen=True)
class TokensConfig:
    """The token-cost exporter."""

    auth: AuthConfig = AuthConfig()
    rate_limit: RateLimitConfig = RateLimitConfig()
    otlp: OTLPConfig = OTLPConfig()
    max_batch_events: int = 1000
    max_body_bytes: int = 1 << 20

    def validate(self) -> list[tuple[str, str]]:
        """Limits must be positive."""
        return check(self.max_batch_events >= 1, "max_batch_events", "must be at least 1") + check(
            self.max_body_bytes >= 1024, "max_body_bytes", "must be at least 1024"
        )


@dataclass(frozen=True)
class PricingConfig:
    """LLM prices: the genai-prices catalogue bundled with the package, negotiated overrides, and
    an opt-in auto-update (the only network access pricing ever makes)."""

    # YAML file of negotiated prices (docs/token-exporter.md); unset: catalogue prices only.
    overrides_file: str | None = None
    # Fetch a newer catalogue every auto_update_interval_seconds; off by default (offline).
    auto_update: bool = False
    # Unset: genai-prices' own published catalogue on GitHub.
    auto_update_url: str | None = None
    auto_update_interval_seconds: float = 3600.0

    def validate(self) -> list[tuple[str, str]]:
        """Polling the catalogue more than once a minute serves nobody."""
        return check(
            self.auto_update_interval_seconds >= 60,
            "auto_update_interval_seconds",
            "must be at least 60",
        )


@dataclass(frozen=True)
class TeamBudget:
    """One team's AI budgets in the reporting currency (`currency.code`): in US dollars, exposed as
    `aifinops_budget_usd{team,period}`; in any other currency as `aifinops_budget{team,period,
    currency}` (docs/currency.md).

    A budget covers the team's whole AI spend: the rule pack compares it with LLM API plus GPU
    spend (`team_period:aifinops_spend_usd:period_to_date`). The token exporter serves it because
    every deployment runs one; the GPU exporter needs no copy.
    """

    daily: Decimal | None = None
    monthly: Decimal | None = None

    def validate(self) -> list[tuple[str, str]]:
        """Budgets are positive amounts; a team entry needs at least one."""
        return (
            check(self.daily is None or self.daily > 0, "daily", "must be positive")
            + check(self.monthly is None or self.monthly > 0, "monthly", "must be positive")
            + check(
                self.daily is not None or self.monthly is not None, "", "needs daily or monthly"
            )
        )


@dataclass(frozen=True)
class CardinalityConfig:
    """How many distinct values each label of each LLM metric, and how many series each LLM metric
    family, keeps before folding into __other__."""

    max_values: int = 500
    # Per label name, e.g. {model: 200, app: 1000}; labels not listed use max_values.
    per_label: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    # Series per family (tokens, cost, requests...): new label sets beyond it fold into __other__.
    # 40,000: 500 teams x 400 apps stay at 163 MB resident, 89 ms a scrape (docs/token-exporter.md).
    max_series: int = 40_000

    def validate(self) -> list[tuple[str, str]]:
        """Every limit at least 1; a budget that holds one label set of each family."""
        return (
            check(self.max_values >= 1, "max_values", "must be at least 1")
            + check(self.max_series >= 8, "max_series", "must be at least 8")
        ) + [
            (f"per_label.{name}", "must be at least 1")
            for name, limit in self.per_label.items()
            if limit < 1
        ]


_TEAM = re.compile(r"[A-Za-z0-9._:/@-]{1,128}")
_APP = re.compile(r"[A-Za-z0-9._:/@-]{0,128}")


@dataclass(frozen=True)
class WhatIfModel:
    """A model whose prices the LLM families expose although nobody calls it, so the rule pack's
    cheaper-model what-if (docs/savings.md) can price traffic on it."""

    provider: str
    model: str

    def validate(self) -> list[tuple[str, str]]:
        """Both names are label values of the price gauge."""
        return check(
            bool(_TEAM.fullmatch(self.provider)),
            "provider",
            "must be 1-128 characters of [A-Za-z0-9._:/@-]",
        ) + check(
            bool(_TEAM.fullmatch(self.model)),
            "model",
            "must be 1-128 characters of [A-Za-z0-9._:/@-]",
        )


# The cheaper models of the rule pack's default `savingsCheaperModels` (jsonnet/config.libsonnet).
DEFAULT_WHAT_IF_MODELS = (
    WhatIfModel("openai", "gpt-4o-mini"),
    WhatIfModel("openai", "gpt-4.1-mini"),
    WhatIfModel("anthropic", "claude-haiku-4-5"),
    WhatIfModel("anthropic", "claude-sonnet-4-5"),
)


@dataclass(frozen=True)
class LLMConfig:
    """LLM usage accounting shared by the token exporter and the bridge (same prices, same limits)."""

    pricing: PricingConfig = PricingConfig()
    # team -> {daily: USD, monthly: USD}
    budgets: Mapping[str, TeamBudget] = field(default_factory=lambda: MappingProxyType({}))
    cardinality: CardinalityConfig = CardinalityConfig()
    # A (source, id) seen again within this window counts once.
    dedupe_window_seconds: float = 24 * 3600.0
    # Bounds the window's memory (about 70 bytes per event); the oldest are forgotten first.
    dedupe_max_entries: int = 1_000_000
    # Models whose catalogue (or override) prices are exposed from the start, before any call:
    # the cheaper models the rule pack prices what-ifs on. Keep it equal to the targets of the
    # mixin's `savingsCheaperModels`.
    what_if_models: tuple[WhatIfModel, ...] = DEFAULT_WHAT_IF_MODELS

    def validate(self) -> list[tuple[str, str]]:
        """Team names as label values allow them; a positive window."""
        return (
            [
                (f"budgets.{team}", "team must be 1-128 characters of [A-Za-z0-9._:/@-]")
                for team in self.budgets
                if not _TEAM.fullmatch(team)
            ]
            + check(self.dedupe_window_seconds > 0, "dedupe_window_seconds", "must be positive")
            + check(self.dedupe_max_entries >= 1000, "dedupe_max_entries", "must be at least 1000")
        )


GPUPattern = Literal[
    "busy", "bursty", "idle", "unallocated", "crashed", "steady", "allocated", "light", "office"
]


@dataclass(frozen=True)
class GPUPriceOverride:
    """A GPU price rule (spot, reserved, on-premises amortised...): the first rule whose every given
    matcher holds sets the price of one GPU-hour. No matcher at all matches every GPU."""

    usd_per_hour: Decimal
    # A price-table model key (`H100`, `A100-80GB`) or a regular expression searched in the model name.
    model: str | None = None
    node: str | None = None
    # The node's `node.kubernetes.io/instance-type` label, e.g. `p5.48xlarge`.
    instance_type: str | None = None
    # `key=value` on the node, e.g. `karpenter.sh/capacity-type=spot`.
    node_label: str | None = None

    def validate(self) -> list[tuple[str, str]]:
        """A usable price, a valid model expression and a `key=value` label."""
        return price_rule_problems(self)


@dataclass(frozen=True)
class GPUSimulatorChange:
    """At `at_seconds` after start, the simulated GPU `gpu` of `node` takes `pattern`."""

    at_seconds: float
    node: str
    gpu: int
    pattern: GPUPattern
    utilization: float | None = None

    def validate(self) -> list[tuple[str, str]]:
        """Times are not negative; a utilisation is a ratio."""
        return check(self.at_seconds >= 0, "at_seconds", "must not be negative") + check(
            self.utilization is None or 0 <= self.utilization <= 1,
            "utilization",
            "must be between 0 and 1",
        )


@dataclass(frozen=True)
class GPUSimulatorConfig:
    """The deterministic fleet of the `simulated` source (nodes `sim-node-0`, `sim-node-1`...)."""

    nodes: int = 2
    gpus_per_node: int = 4
    # Model names as NVML reports them, one per node in turn.
    models: tuple[str, ...] = ("NVIDIA H100 80GB HBM3",)
    # Given to the GPUs in turn.
    patterns: tuple[GPUPattern, ...] = ("busy", "bursty", "idle", "unallocated", "crashed")
    crash_after_seconds: float = 300.0
    # The utilisation of `steady` GPUs.
    utilization: float = 0.5
    seed: int = 0
    schedule: tuple[GPUSimulatorChange, ...] = ()
    # Serve the fleet's allocation as the kubelet's PodResources API on gpu.pod_resources_socket
    # (a kubelet simulator) and take the holders from it, as on a Kubernetes node.
    serve_pod_resources: bool = False

    def validate(self) -> list[tuple[str, str]]:
        """A fleet of at least one GPU, with models and patterns to give out."""
        return (
            check(1 <= self.nodes <= 10_000, "nodes", "must be 1-10000")
            + check(1 <= self.gpus_per_node <= 64, "gpus_per_node", "must be 1-64")
            + check(bool(self.models), "models", "at least one model")
            + check(bool(self.patterns), "patterns", "at least one pattern")
            + check(0 <= self.utilization <= 1, "utilization", "must be between 0 and 1")
            + check(self.crash_after_seconds >= 0, "crash_after_seconds", "must not be negative")
        )


@dataclass(frozen=True)
class GPUPricesConfig:
    """Where GPU prices come from besides the table and the overrides (docs/gpu-exporter.md)."""

    # OpenCost's metrics endpoint, e.g. http://opencost.opencost.svc:9003/metrics: each node's
    # node_gpu_hourly_cost (its spot or custom price) wins over the overrides and the table.
    opencost_url: str | None = None
    # Seconds between reads of OpenCost (it recomputes prices every minute or so).
    opencost_refresh_seconds: float = 60.0
    # OpenCost unreachable: its last good prices hold this long, then the overrides and table.
    opencost_max_age_seconds: float = 900.0

    def validate(self) -> list[tuple[str, str]]:
        """An http(s) URL; a refresh shorter than the grace period."""
        url = self.opencost_url
        return (
            check(
                url is None or url.startswith(("http://", "https://")),
                "opencost_url",
                "must be an http:// or https:// URL",
            )
            + check(
                1 <= self.opencost_refresh_seconds <= 3600,
                "opencost_refresh_seconds",
                "must be 1-3600",
            )
            + check(
                self.opencost_max_age_seconds >= self.opencost_refresh_seconds,
                "opencost_max_age_seconds",
                "must be at least opencost_refresh_seconds",
            )
        )


@dataclass(frozen=True)
class GPUConfig:
    """The GPU exporter (docs/gpu-exporter.md)."""

    # A name of exporters/gpu/sources.py's registry (SOURCES), checked against it at start.
    source: str = "nvml"
    dcgm_url: str | None = None
    interval_seconds: float = 1.0
    # This node's name; unset: the NODE_NAME variable (the chart sets it from spec.nodeName), else
    # dcgm-exporter's hostname label (dcgm source), else this machine's hostname.
    node_name: str | None = None
    # Labels matched by price overrides on every node this exporter reports (e.g. the instance type).
    node_labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # Read each node's labels from the Kubernetes API for price overrides (needs `get nodes`).
    node_labels_from_api: bool = False
    # Unset: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT.
    kubernetes_api_url: str | None = None
    # Where the nvml source reads this node's pods: the kubelet, e.g. https://10.0.3.17:10250
    # (`get nodes/proxy` or `nodes/pods`); unset in a pod: https://$HOST_IP:10250.
    kubelet_url: str | None = None
    # Read this node's pods from the API server instead (`list pods`; more load on the API server).
    pods_from_api: bool = False
    token_file: str | None = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    ca_file: str | None = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    # Kubelet serving certificates are often self-signed.
    insecure_skip_verify: bool = False
    # Where the host's /proc is mounted (GPU process ids are host pids).
    proc_root: str = "/proc"
    # The kubelet's PodResources socket: who holds each GPU, used or not (nvml source; "" turns
    # it off: holders from GPU processes only).
    pod_resources_socket: str = "/var/lib/kubelet/pod-resources/kubelet.sock"
    # Seconds between reads of the allocation (pods starting and stopping show up this late).
    pod_resources_refresh_seconds: float = 10.0
    # Seconds for each dcgm-exporter, kubelet or API request.
    timeout_seconds: float = 2.0
    team_label: str = "team"
    namespace_teams: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # A price table replacing the shipped one (same format as exporters/data/gpu-prices.yaml).
    price_table: str | None = None
    price_overrides: tuple[GPUPriceOverride, ...] = ()
    # Node prices from OpenCost (gpu.prices.opencost_url), before the overrides and the table.
    prices: GPUPricesConfig = GPUPricesConfig()
    # A GPU unread for longer than this (source failing) is not charged for the gap.
    max_gap_seconds: float = 30.0
    # How long a finished pod's (or vanished GPU's) money series stays exposed.
    retention_seconds: float = 900.0
    max_gpus: int = 10_000
    max_pods: int = 10_000
    # Distinct values per label (namespace, team, container) before folding into __other__.
    max_label_values: int = 1_000
    simulator: GPUSimulatorConfig = GPUSimulatorConfig()

    def validate(self) -> list[tuple[str, str]]:
        """The dcgm source needs its URL; intervals, gaps and limits must make sense together."""
        return (
            check(
                self.source != "dcgm" or bool(self.dcgm_url),
                "dcgm_url",
                "required for source dcgm",
            )
            + check(self.interval_seconds > 0, "interval_seconds", "must be positive")
            + check(self.timeout_seconds > 0, "timeout_seconds", "must be positive")
            + check(
                len(os.fsencode(self.pod_resources_socket)) <= MAX_UNIX_SOCKET_PATH,
                "pod_resources_socket",
                f"a unix socket path has at most {MAX_UNIX_SOCKET_PATH} bytes",
            )
            + check(
                0 < self.pod_resources_refresh_seconds <= 300,
                "pod_resources_refresh_seconds",
                "must be positive and at most 300",
            )
            + check(
                2 * self.interval_seconds <= self.max_gap_seconds <= 3600,
                "max_gap_seconds",
                "must be at least twice interval_seconds and at most 3600",
            )
            + check(
                self.retention_seconds >= 4 * self.interval_seconds + self.timeout_seconds,
                "retention_seconds",
                "must be at least 4 * interval_seconds + timeout_seconds",
            )
            + check(self.max_gpus >= 1, "max_gpus", "must be at least 1")
            + check(self.max_pods >= 1, "max_pods", "must be at least 1")
            + check(self.max_label_values >= 1, "max_label_values", "must be at least 1")
            + check(bool(self.team_label), "team_label", "must not be empty")
        )


@dataclass(frozen=True)
class ProducerConfig:
    """How the exporters publish to Kafka: a bounded memory queue, then a disk spool, batched sends."""

    # Events waiting in memory for Kafka; when it is full, or the broker is away, they go to the spool.
    queue_size: int = 10000
    # Where events wait while Kafka is unreachable; "" means data/spool/<program> under the working
    # directory. One process per directory (it is locked); mount a volume to survive pod restarts.
    spool_dir: str = ""
    # Full: the token exporter answers 503 and counts nothing (aifinops_bridge_refused_messages_total);
    # other publishers' newest events are dropped and counted (aifinops_bridge_dropped_messages_total).
    spool_max_bytes: int = 1 << 30
    linger_ms: int = 20
    batch_size_bytes: int = 256 * 1024
    max_message_bytes: int = 1 << 20
    # A send Kafka has not acknowledged by then counts as failed: it and what queues behind it move
    # to the spool, replayed in order with exponential backoff between attempts.
    delivery_timeout_ms: int = 5000
    retry_backoff_ms: int = 200
    retry_backoff_max_ms: int = 10000
    # On stop, how long to keep trying Kafka before what is still in memory goes to the spool.
    stop_timeout_seconds: float = 5.0

    def validate(self) -> list[tuple[str, str]]:
        """Sizes positive; the delivery timeout must leave room for lingering and one request."""
        return (
            check(self.queue_size >= 1, "queue_size", "must be at least 1")
            + check(self.spool_max_bytes >= 1 << 20, "spool_max_bytes", "must be at least 1 MiB")
            + check(self.linger_ms >= 0, "linger_ms", "must be 0 or more")
            + check(self.batch_size_bytes >= 1024, "batch_size_bytes", "must be at least 1024")
            + check(self.max_message_bytes >= 1024, "max_message_bytes", "must be at least 1024")
            + check(
                self.delivery_timeout_ms >= self.linger_ms + 1000,
                "delivery_timeout_ms",
                "must be at least linger_ms + 1000",
            )
            + check(self.retry_backoff_ms >= 1, "retry_backoff_ms", "must be at least 1")
            + check(
                self.retry_backoff_max_ms >= self.retry_backoff_ms,
                "retry_backoff_max_ms",
                "must be at least retry_backoff_ms",
            )
            + check(self.stop_timeout_seconds >= 0, "stop_timeout_seconds", "must be 0 or more")
        )


@dataclass(frozen=True)
class BridgeConfig:
    """The Kafka bridge: consumer group, delivery guarantee state, dead letters and the webhook."""

    # Replicas with the same group id share the partitions (scale out up to the partition count).
    group_id: str = "aifinops-bridge"
    # Where the bridge keeps the checkpoint that carries its counters across a restart (the values
    # of the last scrape and the offsets they include). "" turns it off: counters then restart at
    # zero and only Prometheus' reset handling protects the totals. Keep it on a volume that
    # survives container restarts (an emptyDir does).
    state_dir: str = "data/bridge"
    # Where the group starts on a partition it has no committed offset for.
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    # A message larger than this is invalid (dead-lettered) without being parsed.
    max_message_bytes: int = 1 << 20
    # Dead letters keep the original value up to this size (larger ones are cut, and say so).
    dlq_max_message_bytes: int = 8 << 20
    # After a restart, the messages read again per partition before the checkpoint's offset to
    # remember their (source, id): a retried event that straddles the restart still counts once.
    dedupe_replay_messages: int = 10000
    max_poll_records: int = 5000
    # Kafka's group timings; Tansu holds a join for the whole rebalance timeout, so keep it short.
    max_poll_interval_ms: int = 30000
    session_timeout_ms: int = 10000
    heartbeat_interval_ms: int = 3000
    # GPUs that stop sending samples lose their gauges after this long (money series stay for
    # gpu.retention_seconds).
    gpu_ttl_seconds: float = 60.0
    # Alertmanager notifications larger than this get 413.
    webhook_max_body_bytes: int = 4 << 20

    def validate(self) -> list[tuple[str, str]]:
        """Positive sizes and timings in the order Kafka requires."""
        return (
            check(bool(self.group_id), "group_id", "must not be empty")
            + check(self.max_message_bytes >= 1024, "max_message_bytes", "must be at least 1024")
            + check(
                self.dlq_max_message_bytes >= 1024, "dlq_max_message_bytes", "must be at least 1024"
            )
            + check(self.dedupe_replay_messages >= 0, "dedupe_replay_messages", "must be 0 or more")
            + check(self.max_poll_records >= 1, "max_poll_records", "must be at least 1")
            + check(
                self.heartbeat_interval_ms < self.session_timeout_ms,
                "heartbeat_interval_ms",
                "must be less than session_timeout_ms",
            )
            + check(
                self.max_poll_interval_ms >= 1000, "max_poll_interval_ms", "must be at least 1000"
            )
            + check(self.gpu_ttl_seconds > 0, "gpu_ttl_seconds", "must be positive")
            + check(
                self.webhook_max_body_bytes >= 1024,
                "webhook_max_body_bytes",
                "must be at least 1024",
            )
        )


_URL = re.compile(r"https?://[^\s/]+(/\S*)?")


def _limit_problems(name: str, value: Decimal | int | None) -> list[tuple[str, str]]:
    """A limit is 0 (off) or positive; dollar limits carry at most 12 decimal places."""
    if value is None:
        return []
    problems = check(value >= 0, name, "must be 0 (off) or positive")
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        problems += check(
            isinstance(exponent, int) and exponent >= -12, name, "at most 12 decimal places"
        )
    return problems


@dataclass(frozen=True)
class TripwireLimits:
    """Limits replacing the defaults of `tripwires` for one app of a team; a limit left out keeps
    the team's (or the default), 0 turns it off. An app with limits of its own also gets its own
    last-minute windows, checked besides the team's."""

    request_usd: Decimal | None = None
    team_usd_per_minute: Decimal | None = None
    team_tokens_per_minute: int | None = None

    def validate(self) -> list[tuple[str, str]]:
        """Limits are 0 or positive."""
        return (
            _limit_problems("request_usd", self.request_usd)
            + _limit_problems("team_usd_per_minute", self.team_usd_per_minute)
            + _limit_problems("team_tokens_per_minute", self.team_tokens_per_minute)
        )


@dataclass(frozen=True)
class TeamTripwireLimits(TripwireLimits):
    """One team's limits replacing the defaults of `tripwires`, and per-app limits under `apps`."""

    apps: Mapping[str, TripwireLimits] = field(default_factory=lambda: MappingProxyType({}))

    def validate(self) -> list[tuple[str, str]]:
        """Limits are 0 or positive; app names as label values allow them."""
        return super().validate() + [
            (f"apps.{app}", "app must be at most 128 characters of [A-Za-z0-9._:/@-]")
            for app in self.apps
            if not _APP.fullmatch(app)
        ]


@dataclass(frozen=True)
class TripwiresConfig:
    """Hard spend limits checked on every counted usage event and sent straight to Alertmanager
    (docs/tripwires.md). A limit of 0 is off."""

    enabled: bool = True
    # A single call costing more than this (USD).
    request_usd: Decimal = Decimal("5")
    # A team's spend over the last 60 seconds above this (USD).
    team_usd_per_minute: Decimal = Decimal("20")
    # A team's tokens (all types) over the last 60 seconds above this; 0 is off.
    team_tokens_per_minute: int = 5_000_000
    # team -> limits replacing the defaults above for that team, with `apps: {app: limits}`.
    overrides: Mapping[str, TeamTripwireLimits] = field(
        default_factory=lambda: MappingProxyType({})
    )
    # Alertmanager base URLs (`http://alertmanager:9093`); alerts go to `<url>/api/v2/alerts` of
    # every one. Empty: tripwires are still checked and counted, nothing is sent.
    alertmanager_urls: tuple[str, ...] = ()
    # Seconds for each Alertmanager request.
    timeout_seconds: float = 2.0
    # While a tripwire holds, its alert is sent again this often to push its endsAt forward...
    refresh_seconds: float = 30.0
    # ...to this many seconds after the send, so it resolves by itself when the sender is gone.
    alert_ttl_seconds: float = 120.0
    # A tripwire resolves once its limit has not been exceeded for this long (the alert is sent
    # with endsAt now).
    resolve_after_seconds: float = 60.0
    # Events older than this (event time against receipt) trip nothing: a backlog read after an
    # outage is history for the rules, not a runaway happening now.
    max_event_age_seconds: float = 300.0
    # Teams (and overridden apps) whose last-minute windows are kept; the least recently seen
    # are forgotten first.
    max_tracked: int = 10_000
    # Tripwires firing at once; beyond this, new ones are counted but not sent.
    max_firing: int = 1_000
    # Alert notifications waiting for the sender; beyond this they are dropped and counted.
    queue_size: int = 1_000
    # Retry backoff of a failed Alertmanager post: doubles from the first to the max.
    retry_backoff_seconds: float = 0.2
    retry_backoff_max_seconds: float = 10.0
    # runbook_url = this + '#aifinopsspendtripwire'; the rule pack's runbook base.
    runbook_url: str = "https://github.com/aifinops/aifinops/blob/main/docs/runbooks.md"
    # Grafana's base URL: dashboard_url = <grafana_url>/d/aifinops-llm?var-team=<team>.
    grafana_url: str = "http://localhost:3000"

    def validate(self) -> list[tuple[str, str]]:
        """Limits 0 or positive, override keys as label values allow, timings in order."""
        problems = (
            _limit_problems("request_usd", self.request_usd)
            + _limit_problems("team_usd_per_minute", self.team_usd_per_minute)
            + _limit_problems("team_tokens_per_minute", self.team_tokens_per_minute)
        )
        problems += [
            (f"overrides.{team}", "team must be 1-128 characters of [A-Za-z0-9._:/@-]")
            for team in self.overrides
            if not _TEAM.fullmatch(team)
        ]
        problems += [
            (f"alertmanager_urls[{i}]", "must be an http:// or https:// URL")
            for i, url in enumerate(self.alertmanager_urls)
            if not _URL.fullmatch(url)
        ]
        return (
            problems
            + check(self.timeout_seconds > 0, "timeout_seconds", "must be positive")
            + check(self.refresh_seconds >= 1, "refresh_seconds", "must be at least 1")
            + check(
                self.alert_ttl_seconds >= 2 * self.refresh_seconds,
                "alert_ttl_seconds",
                "must be at least twice refresh_seconds",
            )
            + check(self.resolve_after_seconds >= 0, "resolve_after_seconds", "must be 0 or more")
            + check(self.max_event_age_seconds > 0, "max_event_age_seconds", "must be positive")
            + check(self.max_tracked >= 1, "max_tracked", "must be at least 1")
            + check(self.max_firing >= 1, "max_firing", "must be at least 1")
            + check(self.queue_size >= 1, "queue_size", "must be at least 1")
            + check(self.retry_backoff_seconds > 0, "retry_backoff_seconds", "must be positive")
            + check(
                self.retry_backoff_max_seconds >= self.retry_backoff_seconds,
                "retry_backoff_max_seconds",
                "must be at least retry_backoff_seconds",
            )
        )


@dataclass(frozen=True)
class CurrencyConfig:
    """The reporting currency (docs/currency.md): the `_usd` families stay exact in US dollars;
    figures in `code` are converted with the effective-dated USD->`code` rate in force when the
    money was spent, so a new rate never rewrites history."""

    # ISO 4217 code of the reporting (billing) currency.
    code: str = "USD"
    # [{from: 2026-11-01, rate: 0.7893}, ...]: units of `code` per US dollar from `from` (a date is
    # 00:00 UTC) until the next entry; required unless `code` is USD or `rates_file` is set.
    rates: tuple[dict[str, Any], ...] = ()
    # The same list in a file the operator refreshes (YAML, or CSV with a `from,rate` header);
    # read again whenever it changes, and replacing `rates` when set.
    rates_file: str | None = None
    # A rate older than this many days no longer applies (a rates file nobody refreshed is an
    # error, not a silent old rate); unset: each rate applies until the next one.
    max_rate_age_days: float | None = None
    # How often the exporters look at `rates_file` and the rate in force.
    reload_interval_seconds: float = 60.0

    def validate(self) -> list[tuple[str, str]]:
        """An ISO 4217-shaped code, valid increasing rates, and rates for a currency other than USD."""
        _rates, problems = parse_rates(self.rates)
        return (
            check(
                bool(re.fullmatch(r"[A-Z]{3}", self.code)),
                "code",
                "must be 3 upper-case letters (ISO 4217)",
            )
            + problems
            + check(
                self.code == "USD" or bool(self.rates) or bool(self.rates_file),
                "rates",
                f"required for currency {self.code} (or set rates_file)",
            )
            + check(
                self.max_rate_age_days is None or self.max_rate_age_days > 0,
                "max_rate_age_days",
                "must be positive",
            )
            + check(
                self.reload_interval_seconds >= 1, "reload_interval_seconds", "must be at least 1"
            )
        )


@dataclass(frozen=True)
class Config:
    """The whole configuration file."""

    # Names this deployment in the `aifinops-counted-in` header, so a bridge in the same cluster
    # does not count again what the local exporters already counted.
    cluster: str = checked(
        "default",
        lambda v: re.fullmatch(r"[A-Za-z0-9._-]{1,63}", v),
        "must be 1-63 of [A-Za-z0-9._-]",
    )
    web: WebConfig = WebConfig()
    log: LogConfig = LogConfig()
    kafka: KafkaConfig = KafkaConfig()
    producer: ProducerConfig = ProducerConfig()
    tokens: TokensConfig = TokensConfig()
    llm: LLMConfig = LLMConfig()
    gpu: GPUConfig = GPUConfig()
    bridge: BridgeConfig = field(default_factory=BridgeConfig)
    tripwires: TripwiresConfig = TripwiresConfig()
    currency: CurrencyConfig = CurrencyConfig()
