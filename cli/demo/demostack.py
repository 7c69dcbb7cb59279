"""The whole aifinops pipeline on loopback, started in order with a health check at each step and
stopped in reverse: broker, topics, Prometheus with the rule pack, Alertmanager with the shipped
routing, GPU exporter, token exporter, bridge, plus the demo's alert receiver, its `cost-anomalies`
reader and the gateway producer the traffic generator writes to Kafka with.

`aifinops demo`, the end-to-end test and the latency benchmark all run this one class, so they
exercise exactly the same processes and configuration.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import io
import logging
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from aifinops.bridge.producer import KafkaEventSink
from aifinops.exporters.config import (
    MAX_UNIX_SOCKET_PATH,
    BridgeConfig,
    Config,
    KafkaConfig,
    ProducerConfig,
    TopicsConfig,
)
from aifinops.exporters.gpu.simulated import SimulatedSource
from aifinops.exporters.runtime.config import load_config

from .. import topics
from .alertwatch import AlertReceiver, AnomalyTail
from .history import backfill
from .opencost import OpenCostDemo
from .stack import (
    Alertmanager,
    KafkaBroker,
    Process,
    Prometheus,
    StackError,
    free_port,
    http_ok,
    wait_until,
)
from .traffic import DEFAULT_WORKLOADS, TrafficGenerator, Workload

log = logging.getLogger(__name__)

# The rule pack, routing and dashboards ship inside this package (`make generate` copies rules/
# and dashboards/ here), so an installed `aifinops demo` needs no checkout.
PACKAGE_FILES = Path(__file__).resolve().parent / "files"
RULES_DIR = PACKAGE_FILES / "rules"
ALERTMANAGER_CONFIG = RULES_DIR / "alertmanager.yaml"
DASHBOARDS_DIR = PACKAGE_FILES / "dashboards"
# The reporting currencies the demo runs in: USD reads rules/ and dashboards/, the others their
# render in that currency (`make generate` writes `files/<code>/`, docs/currency.md).
CURRENCIES = ("GBP", "USD")
DEFAULT_CURRENCY = "GBP"
# Units of the currency per US dollar, each from its date (00:00 UTC): the month before this one
# and this one, so the rate changes once in the demo's recent past as a real series would.
FX_RATES = {"GBP": ("0.7893", "0.7951")}
BRIDGE_WEBHOOK_PATH = "/v1/alertmanager"
# The `job` names the rule pack's selectors expect (jsonnet/config.libsonnet): the chart's.
JOBS = {
    "gpu": "aifinops-gpu-exporter",
    "tokens": "aifinops-token-exporter",
    "bridge": "aifinops-bridge",
}
SCRAPE_INTERVAL = "5s"

# "auto", or a name of the GPU source registry (aifinops.exporters.gpu.sources.SOURCES).
GPUSource = str

# LLM budgets of the demo's teams, in the reporting currency (aifinops_budget{currency}): above their normal spend, so no budget
# alert fires on normal traffic; the runaway burns platform's daily budget about ten times too fast.
BUDGETS = {
    "search": {"daily": 400, "monthly": 10000},
    "support": {"daily": 1000, "monthly": 25000},
    "research": {"daily": 1200, "monthly": 30000},
    "platform": {"daily": 2000, "monthly": 50000},
    "marketing": {"daily": 150, "monthly": 4000},
    "sales": {"daily": 150, "monthly": 4000},
    "nlp": {"daily": 600, "monthly": 15000},
}
# The simulated fleet: pods in `research` carry no team label, the namespace decides. Its
# allocation is served through a kubelet simulator (the PodResources gRPC API) that the exporter
# reads like a node's, and one GPU (ALLOCATED_GPU) is allocated to a pod that never runs a process.
SIMULATOR = {
    "nodes": 2,
    "gpus_per_node": 4,
    "models": ["NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB"],
    # Each GPU kind of the savings tier has its GPU (docs/savings.md): idle and allocated are
    # released, light is shared as a MIG profile, office is scheduled; bursty must get nothing.
    "patterns": [
        "busy",
        "bursty",
        "idle",
        "unallocated",
        "crashed",
        "allocated",
        "light",
        "office",
    ],
    "serve_pod_resources": True,
}
# The sixth GPU in pattern order gets `allocated`: held by research/notebook-1-1, no process.
ALLOCATED_GPU = ("sim-node-1", 1)
# Namespace -> team (aifinops_namespace_team_info): the GPU pods' namespaces and the LLM teams'
# own, so the demo OpenCost's Kubernetes costs land on the same teams as their GPU and LLM spend.
NAMESPACE_TEAMS = {
    "research": "research",
    "ml-training": "nlp",
    "inference": "platform",
    "platform": "platform",
    "search": "search",
    "support": "support",
}


def demo_fleet() -> SimulatedSource:
    """The GPU exporter's simulated fleet (same GPUs, pods and patterns), for its history."""
    sim: dict[str, Any] = SIMULATOR
    return SimulatedSource(
        nodes=sim["nodes"],
        gpus_per_node=sim["gpus_per_node"],
        models=sim["models"],
        patterns=sim["patterns"],
    )


@dataclass(frozen=True)
class Endpoint:
    """A daemon of the stack: its name (also its console script's), module, `job` label and port."""

    name: str
    module: str
    job: str
    port: int

    @property
    def url(self) -> str:
        """Base URL on loopback."""
        return f"http://127.0.0.1:{self.port}"


def nvml_gpu_count() -> int:
    """How many GPUs NVML sees on this machine (0 without the library, a driver or a GPU)."""
    from aifinops.exporters.gpu.attribution import ProcessAttributor
    from aifinops.exporters.gpu.model import SourceError
    from aifinops.exporters.gpu.nvml import NVMLSource

    try:
        return len(NVMLSource("probe", ProcessAttributor(None, "/proc")).fetch().gpus)
    except SourceError:
        return 0  # no library, driver or GPU


def daemon_command(script: str, module: str) -> list[str]:
    """How to run a console script of this installation: the script beside this Python, else the
    module's `main` through this interpreter (a checkout without an installed script)."""
    candidate = Path(sys.executable).with_name(script)
    if candidate.exists():
        return [str(candidate)]
    found = shutil.which(script)
    if found:
        return [found]
    return [sys.executable, "-c", f"import sys; from {module} import main; sys.exit(main())"]


def currency_files(currency: str) -> tuple[Path, Path]:
    """The rule folder and dashboard folder of the pack rendered in `currency`."""
    if currency == "USD":
        return RULES_DIR, DASHBOARDS_DIR
    if currency not in CURRENCIES:
        raise StackError(f"currency: {currency!r} is not one of {', '.join(CURRENCIES)}")
    base = PACKAGE_FILES / currency.lower()
    return base / "rules", base / "dashboards"


def currency_config(currency: str, today: date) -> dict[str, Any]:
    """The `currency` section of the demo's config: `code`, and for a currency other than USD
    its effective-dated rates (the first of last month and of this month, `FX_RATES`)."""
    if currency == "USD":
        return {"code": "USD"}
    first = today.replace(day=1)
    previous = (first - timedelta(days=1)).replace(day=1)
    older, current = FX_RATES[currency]
    return {
        "code": currency,
        "rates": [
            {"from": previous.isoformat(), "rate": older},
            {"from": first.isoformat(), "rate": current},
        ],
    }


def rule_files(directory: Path = RULES_DIR) -> list[Path]:
    """The Prometheus rule files of the pack: `*.yaml` with a top-level `groups` (not the
    Alertmanager config, not promtool tests)."""
    out = []
    for path in sorted(directory.glob("*.y*ml")):
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise StackError(f"{path}: not YAML: {exc}") from exc
        if isinstance(doc, dict) and "groups" in doc and "rule_files" not in doc:
            out.append(path)
    return out


def alertmanager_config(
    shipped: dict[str, Any], bridge_url: str, demo_url: str | None
) -> dict[str, Any]:
    """The shipped routing with its webhook URLs pointed at this stack: every `webhook_configs`
    entry that targets the bridge (`.../v1/alertmanager`) gets `bridge_url`, and every receiver
    also notifies `demo_url` (the demo's own receiver) when given."""
    config = copy.deepcopy(shipped)
    receivers = config.get("receivers") or []
    for receiver in receivers:
        hooks = receiver.get("webhook_configs") or []
        for hook in hooks:
            if str(hook.get("url", "")).rstrip("/").endswith(BRIDGE_WEBHOOK_PATH):
                hook["url"] = bridge_url
        if demo_url:
            hooks.append({"url": demo_url, "send_resolved": True})
            receiver["webhook_configs"] = hooks
    return config


class DemoStack:
    """The pipeline's processes under `workdir`; `start()` brings them up in order, `stop()` ends
    every one that started (also after a failed start) and keeps the work directory.

    `workloads` and `daily_cycle` describe the fleet's traffic: `traffic()` sends it, and
    Prometheus starts with `history_hours` of its recorded history (`history.backfill`), so the
    fast tier has baselines. `progress` receives one line per step. `kafka_external` uses an
    existing Kafka instead of starting Tansu. `gpu_source="auto"` uses NVML when it finds a GPU,
    else the simulator. `currency` is the reporting currency (`CURRENCIES`): the daemons' config
    gets its rates and Prometheus the rule pack rendered in it.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        workloads: Sequence[Workload] = DEFAULT_WORKLOADS,
        daily_cycle: bool = True,
        history_hours: float = 1.0,
        gpu_source: GPUSource = "auto",
        kafka_external: str | None = None,
        currency: str = DEFAULT_CURRENCY,
        progress: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.currency = currency
        self.rules_dir, self.dashboards_dir = currency_files(currency)
        self.workloads = list(workloads)
        self.daily_cycle = daily_cycle
        self.history_hours = history_hours
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.progress = progress
        if gpu_source == "auto":
            gpu_source = "nvml" if nvml_gpu_count() else "simulated"
        self.gpu_source: GPUSource = gpu_source
        self.broker = KafkaBroker(self.workdir / "kafka", external=kafka_external)
        self.gpu = Endpoint("aifinops-gpu-exporter", "gpu_exporter", JOBS["gpu"], free_port())
        self.tokens = Endpoint(
            "aifinops-token-exporter", "token_exporter", JOBS["tokens"], free_port()
        )
        self.bridge = Endpoint("aifinops-bridge", "bridge", JOBS["bridge"], free_port())
        self.receiver = AlertReceiver()
        # OpenCost's /metrics for the simulated cluster (Kubernetes costs, node GPU prices).
        self.opencost = OpenCostDemo()
        self.config_path = self.workdir / "aifinops.yaml"
        self.config: Config | None = None
        self.prometheus: Prometheus | None = None
        self.alertmanager: Alertmanager | None = None
        self.processes: dict[str, Process] = {}
        self.anomalies: AnomalyTail | None = None
        self.gateway: KafkaEventSink | None = None
        self._stops: list[tuple[str, Callable[[], None]]] = []
        # The simulated kubelet's PodResources socket (a unix socket path has at most 107 bytes).
        self.kubelet_socket = self.workdir / "kubelet.sock"
        if len(os.fsencode(self.kubelet_socket)) > MAX_UNIX_SOCKET_PATH:
            # $TMPDIR may itself be deep (a test's folder): then /tmp, which every system has.
            base = tempfile.gettempdir()
            if len(os.fsencode(base)) > MAX_UNIX_SOCKET_PATH - 40:
                base = "/tmp"
            short = tempfile.mkdtemp(prefix="aifinops-kubelet-", dir=base)
            self.kubelet_socket = Path(short) / "kubelet.sock"
            self._stops.append(
                ("kubelet socket directory", lambda: shutil.rmtree(short, ignore_errors=True))
            )

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start every part in order, each checked healthy before the next. Raises `StackError`
        naming the part that failed, with its log's tail; what started keeps running until
        `stop()`."""
        self._step("alert receiver", self._start_receiver)
        self._step("Kafka-protocol broker", self._start_broker)
        self._step("topics", self._create_topics)
        self._step("OpenCost-format endpoint", self._start_opencost)
        self._step("Prometheus", self._start_prometheus)
        self._step("Alertmanager", self._start_alertmanager)
        self._step(f"GPU exporter ({self.gpu_source})", lambda: self._start_daemon(self.gpu))
        self._step("token exporter", lambda: self._start_daemon(self.tokens))
        self._step("bridge", lambda: self._start_daemon(self.bridge))
        self._step("(checking that Prometheus scrapes the three daemons)", self._wait_for_targets)
        self._step("cost-anomalies reader", self._start_anomaly_reader)
        self._step("gateway producer", self._start_gateway)

    def stop(self) -> None:
        """Stop what started, last first; a part that fails to stop does not keep the others up."""
        while self._stops:
            name, stop = self._stops.pop()
            try:
                stop()
            except Exception as exc:
                log.warning("stopping %s: %s", name, exc)

    def _step(self, name: str, start: Callable[[], None]) -> None:
        self.progress(f"starting {name}")
        start()

    # -- parts -----------------------------------------------------------------------------------

    def _start_receiver(self) -> None:
        self.receiver.start()
        self._stops.append(("alert receiver", self.receiver.stop))

    def _start_opencost(self) -> None:
        self.opencost.start()
        self._stops.append(("OpenCost-format endpoint", self.opencost.stop))

    def _start_broker(self) -> None:
        self._stops.append(("broker", self.broker.stop))
        self.broker.start()
        self._write_daemon_config()

    def _write_daemon_config(self) -> None:
        isolation = self._isolation()
        document: dict[str, Any] = {
            # The exporters' events carry `aifinops-counted-in: demo`; the bridge skips those and
            # counts what the "remote" gateway writes to Kafka without the header.
            "cluster": "demo",
            **isolation,
            "bridge": {
                # Tansu holds a group join for the whole rebalance timeout: keep it short.
                "max_poll_interval_ms": 3000,
                "session_timeout_ms": 6000,
                "heartbeat_interval_ms": 1000,
                **isolation.get("bridge", {}),
            },
            # Budgets are in the reporting currency (docs/currency.md).
            "currency": currency_config(self.currency, datetime.now(UTC).date()),
            "llm": {"budgets": BUDGETS},
            "gpu": {
                "source": self.gpu_source,
                "namespace_teams": NAMESPACE_TEAMS,
                "simulator": SIMULATOR,
                "pod_resources_socket": str(self.kubelet_socket),
                "prices": {"opencost_url": self.opencost.url},
            },
        }
        self.config_path.write_text(yaml.safe_dump(document, sort_keys=False))
        # The daemons get the brokers by flag; the demo's own Kafka clients from this config.
        self.config = load_config(
            Config,
            self.config_path,
            overrides={"kafka.bootstrap_servers": self.broker.bootstrap},
        )

    def _isolation(self) -> dict[str, Any]:
        """On a shared Kafka (`kafka_external`), topics and consumer group of this run's own, so
        earlier runs' messages and offsets are not read; Tansu starts empty and needs none."""
        if not self.broker.external:
            return {}
        suffix = uuid.uuid4().hex[:8]
        defaults = TopicsConfig()
        topics = {
            f.name: {**dataclasses.asdict(getattr(defaults, f.name))}
            for f in dataclasses.fields(TopicsConfig)
        }
        for topic in topics.values():
            base, dot, dlq = topic["name"].partition(".")
            topic["name"] = f"{base}-{suffix}{dot}{dlq}"
        return {
            "kafka": {"topics": topics},
            "bridge": {"group_id": f"{BridgeConfig().group_id}-{suffix}"},
        }

    def _create_topics(self) -> None:
        # Exactly `aifinops topics create` with the demo's config.
        args = argparse.Namespace(
            action="create",
            config_file=str(self.config_path),
            kafka_bootstrap_servers=self.broker.bootstrap,
            timeout=10.0,
        )
        with contextlib.redirect_stdout(io.StringIO()) as out:
            code = topics.run(args)
        if code != 0:
            raise StackError(f"aifinops topics create failed ({code}):\n{out.getvalue()}")

    def _start_prometheus(self) -> None:
        files = rule_files(self.rules_dir)
        if not files:
            raise StackError(f"no rule files in {self.rules_dir}: run `make generate`")
        self.progress(f"reporting currency {self.currency}: the rule pack rendered in it")
        self.progress(f"loading {len(files)} rule files from {self.rules_dir}")
        # Alertmanager's port is fixed now so Prometheus can be told where it will be.
        self.alertmanager = Alertmanager(self.workdir / "alertmanager", self._alertmanager_config())
        scrape = [
            {
                "job_name": e.job,
                "scrape_interval": SCRAPE_INTERVAL,
                "scrape_timeout": "4s",
                "static_configs": [{"targets": [f"127.0.0.1:{e.port}"]}],
            }
            for e in (self.gpu, self.tokens, self.bridge)
        ]
        # As OpenCost is scraped in a cluster (the rules' opencostSelector): its own namespace,
        # pod and instance labels kept.
        scrape.append(
            {
                "job_name": "opencost",
                "scrape_interval": "15s",
                "honor_labels": True,
                "static_configs": [{"targets": [f"127.0.0.1:{self.opencost.port}"]}],
            }
        )
        scrape.append(
            {
                "job_name": "alertmanager",
                "static_configs": [{"targets": [self.alertmanager.address]}],
            }
        )
        self.prometheus = Prometheus(
            self.workdir / "prometheus",
            scrape_configs=scrape,
            rule_files=files,
            alertmanagers=[self.alertmanager.address],
        )
        if self.history_hours > 0:
            self.progress(
                f"writing {self.history_hours:g} h of recorded history for the fast tier"
                + (" and 3 days for the savings tier" if self.gpu_source == "simulated" else "")
            )
            backfill(
                self.prometheus.workdir / "data",
                files,
                self.workloads,
                hours=self.history_hours,
                daily_cycle=self.daily_cycle,
                fleet=demo_fleet() if self.gpu_source == "simulated" else None,
            )
        self._stops.append(("Prometheus", self.prometheus.stop))
        self.prometheus.start()
        groups = self.prometheus.api("rules")["groups"]
        expected = sum(len(yaml.safe_load(p.read_text(encoding="utf-8"))["groups"]) for p in files)
        if len(groups) != expected:
            raise StackError(
                f"Prometheus loaded {len(groups)} rule groups of {expected}:\n"
                + self.prometheus.process.log_tail()
            )

    def _alertmanager_config(self) -> dict[str, Any]:
        if not ALERTMANAGER_CONFIG.exists():
            raise StackError(f"{ALERTMANAGER_CONFIG} is missing: run `make generate`")
        shipped = yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))
        return alertmanager_config(
            shipped, f"{self.bridge.url}{BRIDGE_WEBHOOK_PATH}", self.receiver.url
        )

    def _start_alertmanager(self) -> None:
        assert self.alertmanager is not None
        self._stops.append(("Alertmanager", self.alertmanager.stop))
        self.alertmanager.start()

    def _start_daemon(self, endpoint: Endpoint) -> None:
        args = [
            *daemon_command(endpoint.name, f"aifinops.cli.{endpoint.module}"),
            f"--config.file={self.config_path}",
            f"--web.listen-address=127.0.0.1:{endpoint.port}",
            f"--kafka.bootstrap-servers={self.broker.bootstrap}",
        ]
        if endpoint is self.gpu:
            args.append(f"--source={self.gpu_source}")
        # Each daemon runs in its own directory: its log and its producer spool live there.
        process = Process(endpoint.name, args, self.workdir / endpoint.name)
        self.processes[endpoint.name] = process
        self._stops.append((endpoint.name, process.stop))
        process.start()

        def ready() -> bool:
            process.check_alive()
            return http_ok(f"{endpoint.url}/-/ready")

        wait_until(ready, 60, f"{endpoint.name} to become ready on {endpoint.url}")

    def _wait_for_targets(self) -> None:
        assert self.prometheus is not None
        jobs = "|".join(JOBS.values())
        self.prometheus.wait_for(
            f'up{{job=~"{jobs}"}} == 1',
            lambda result: len(result) == len(JOBS),
            timeout=30,
        )

    def _start_anomaly_reader(self) -> None:
        from .alertwatch import AnomalyTail

        assert self.config is not None
        self.anomalies = AnomalyTail(self.config)
        self._stops.append(("cost-anomalies reader", self.anomalies.stop))
        self.anomalies.start()

    def _start_gateway(self) -> None:
        from aifinops.bridge.producer import KafkaEventSink

        self.gateway = KafkaEventSink(
            KafkaConfig(bootstrap_servers=tuple(self.broker.bootstrap.split(","))),
            ProducerConfig(),
            self.workdir / "gateway-spool",
        )
        self._stops.append(("gateway producer", self.gateway.stop))
        self.gateway.start()

    # -- what users of the stack need ------------------------------------------------------------

    def traffic(self, **kwargs: Any) -> TrafficGenerator:
        """The fleet's traffic generator wired to this stack (not started): HTTP and OTLP spans to
        the token exporter, the `kafka` workloads through the gateway producer."""
        assert self.config is not None
        return TrafficGenerator(
            f"{self.tokens.url}/v1/events",
            self.workloads,
            kafka_sink=self.gateway,
            otlp_url=f"{self.tokens.url}/v1/traces",
            kafka_topic=self.config.kafka.topics.usage.name,
            daily_cycle=self.daily_cycle,
            **kwargs,
        )

    def logs(self) -> list[Process]:
        """Every process of the stack, for showing log tails."""
        out = [p for p in (self.broker.process,) if p is not None]
        if self.prometheus is not None:
            out.append(self.prometheus.process)
        if self.alertmanager is not None:
            out.append(self.alertmanager.process)
        return out + list(self.processes.values())

    def urls(self) -> dict[str, str]:
        """What to open in a browser or scrape by hand."""
        out = {}
        if self.prometheus is not None:
            out["Prometheus"] = self.prometheus.url
        if self.alertmanager is not None:
            out["Alertmanager"] = self.alertmanager.url
        for e in (self.gpu, self.tokens, self.bridge):
            out[f"{e.name} metrics"] = f"{e.url}/metrics"
        out["OpenCost-format metrics"] = self.opencost.url
        out["usage API"] = f"{self.tokens.url}/v1/events"
        out["OTLP traces"] = f"{self.tokens.url}/v1/traces"
        out["Kafka bootstrap"] = self.broker.bootstrap
        return out
