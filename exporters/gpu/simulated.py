"""The `simulated` source: a deterministic GPU fleet for the demo and tests.

`nodes x gpus_per_node` GPUs get patterns in turn from `patterns`:

- `busy`: a training job, 85-99 % utilised;
- `bursty`: an inference service, a 30 s burst at ~95 % every 2 minutes, ~3 % between;
- `idle`: allocated but idle, a pod holds it at 0-2 % with a model loaded (the waste to catch);
- `unallocated`: no pod, 0 %, nothing in memory;
- `crashed`: busy until `crash_after_seconds` after the pattern started, then 0 % with its memory
  still held and the pod still holding it (a hung job);
- `steady`: a constant utilisation (`utilization`), for exact figures in tests;
- `allocated`: a pod was given the GPU and never started a process on it (a notebook that never
  imported torch): 0 %, nothing in memory, no process. Only the kubelet's allocation knows who
  holds it; process attribution sees no holder.
- `light`: a small model served on a whole GPU, 8-16 % utilised (peaks included) in 8 % of its
  memory: the savings tier's share to a MIG profile (docs/savings.md);
- `office`: busy (60-80 %) from 08:00 to 20:00 UTC on weekdays by the wall clock, idle at other
  times: the savings tier's schedule.

A reading's `holders` are the pods with a process on the GPU (what process attribution finds).
`allocation()` is the kubelet's view, every pod a GPU is allocated to, as a PodResources `List`
answer; with `gpu.simulator.serve_pod_resources` the exporter serves it through a kubelet
simulator on `gpu.pod_resources_socket` and reads the holders back through its real client.

Every value is a pure function of the seed, the GPU and the time since start, so two runs with the
same clock give the same numbers. The demo changes the fleet while it runs through a schedule in the
config (`gpu.simulator.schedule`: at `at_seconds`, set a GPU's pattern) or at any moment through
`set_pattern()`, which the daemon exposes as `POST /-/simulator` with
`{"node": "sim-node-0", "gpu": 1, "pattern": "idle"}`.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import MappingProxyType

from .model import GPUReading, GPUSnapshot, PodRef
from .podresources import api_pb2
from .podresources.simulator import container, list_response, pod

PATTERNS = (
    "busy",
    "bursty",
    "idle",
    "unallocated",
    "crashed",
    "steady",
    "allocated",
    "light",
    "office",
)
DEFAULT_PATTERNS = ("busy", "bursty", "idle", "unallocated", "crashed")
DEFAULT_MODELS = ("NVIDIA H100 80GB HBM3",)
GIB = 1 << 30
# The `office` pattern's working hours: [start, end) UTC on Monday to Friday.
OFFICE_HOURS = (8, 20)

# (model name fragment, memory GiB, board power W) for realistic numbers; first match wins.
_SPECS = (
    ("H200", 141, 700),
    ("H100", 80, 700),
    ("A100-SXM4-80GB", 80, 400),
    ("A100 80GB", 80, 300),
    ("A100", 40, 400),
    ("L40S", 48, 350),
    ("L4", 24, 72),
    ("A10G", 24, 300),
    ("T4", 16, 70),
    ("V100", 16, 300),
)
_NAMESPACES = (
    ("ml-training", "llm-finetune", "nlp"),
    ("inference", "chat-api", "platform"),
    ("research", "notebook", ""),  # no team label: the namespace map decides
)


class SimulatorError(ValueError):
    """A control request naming an unknown GPU or pattern."""


@dataclass(frozen=True)
class ScheduledChange:
    """At `at_seconds` after start, give GPU `gpu` of `node` the pattern `pattern`."""

    at_seconds: float
    node: str
    gpu: int
    pattern: str
    utilization: float | None = None


@dataclass
class _SimGPU:
    node: str
    index: int
    uuid: str
    model: str
    memory_total: int
    tdp: float
    holder: PodRef
    pattern: str
    since: float
    utilization: float
    salt: int


def _spec(model: str) -> tuple[int, float]:
    for fragment, gib, watts in _SPECS:
        if fragment.lower() in model.lower():
            return gib * GIB, float(watts)
    match = re.search(r"(\d+)\s*GB", model)
    return (int(match.group(1)) if match else 16) * GIB, 300.0


def _hash(*parts: object) -> int:
    digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _uuid(seed: int, node: str, index: int) -> str:
    h = hashlib.blake2b(f"{seed}/{node}/{index}".encode(), digest_size=16).hexdigest()
    return f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


class SimulatedSource:
    """A deterministic fleet; `clock` gives the seconds the patterns run on (injectable in tests)."""

    name = "simulated"

    def __init__(
        self,
        *,
        nodes: int = 2,
        gpus_per_node: int = 4,
        models: Sequence[str] = DEFAULT_MODELS,
        patterns: Sequence[str] = DEFAULT_PATTERNS,
        crash_after_seconds: float = 300.0,
        utilization: float = 0.5,
        seed: int = 0,
        schedule: Sequence[ScheduledChange] = (),
        node_prefix: str = "sim-node-",
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        for p in patterns:
            if p not in PATTERNS:
                raise SimulatorError(f"unknown pattern {p!r} (one of {', '.join(PATTERNS)})")
        if not models or not patterns:
            raise SimulatorError("models and patterns must not be empty")
        self._clock = clock
        self._start = clock()
        # Unix time at the start: the `office` pattern follows the time of day.
        self._wall_start = wall_clock()
        self._crash_after = crash_after_seconds
        self._seed = seed
        self._lock = threading.Lock()
        self._schedule = sorted(schedule, key=lambda c: c.at_seconds)
        self._gpus: dict[tuple[str, int], _SimGPU] = {}
        n = 0
        for node_i in range(nodes):
            node = f"{node_prefix}{node_i}"
            model = models[node_i % len(models)]
            memory, tdp = _spec(model)
            for index in range(gpus_per_node):
                namespace, workload, team = _NAMESPACES[n % len(_NAMESPACES)]
                labels = {"app": workload, **({"team": team} if team else {})}
                holder = PodRef(
                    namespace,
                    f"{workload}-{node_i}-{index}",
                    "main",
                    MappingProxyType(labels),
                )
                self._gpus[(node, index)] = _SimGPU(
                    node=node,
                    index=index,
                    uuid=_uuid(seed, node, index),
                    model=model,
                    memory_total=memory,
                    tdp=tdp,
                    holder=holder,
                    pattern=patterns[n % len(patterns)],
                    since=0.0,
                    utilization=utilization,
                    salt=_hash(seed, node, index),
                )
                n += 1
        self._labels = {
            (g.holder.namespace, g.holder.pod): g.holder.labels for g in self._gpus.values()
        }
        for change in self._schedule:
            if (change.node, change.gpu) not in self._gpus:
                raise SimulatorError(f"schedule: no simulated GPU {change.gpu} on {change.node}")
            if change.pattern not in PATTERNS:
                raise SimulatorError(f"schedule: unknown pattern {change.pattern!r}")

    def set_pattern(
        self, node: str, gpu: int, pattern: str, utilization: float | None = None
    ) -> Mapping[str, object]:
        """Give one GPU a new pattern from now on; returns its new state. Raises `SimulatorError`."""
        if pattern not in PATTERNS:
            raise SimulatorError(f"unknown pattern {pattern!r} (one of {', '.join(PATTERNS)})")
        if utilization is not None and not 0 <= utilization <= 1:
            raise SimulatorError("utilization must be between 0 and 1")
        with self._lock:
            g = self._gpus.get((node, gpu))
            if g is None:
                raise SimulatorError(f"no simulated GPU {gpu} on node {node!r}")
            self._apply(g, pattern, utilization, self._clock() - self._start)
            return {"node": node, "gpu": gpu, "uuid": g.uuid, "pattern": g.pattern}

    @staticmethod
    def _apply(g: _SimGPU, pattern: str, utilization: float | None, t: float) -> None:
        g.pattern = pattern
        g.since = t
        if utilization is not None:
            g.utilization = utilization

    def fetch(self) -> GPUSnapshot:
        """Every simulated GPU at the clock's current time."""
        with self._lock:
            t = self._advance()
            return GPUSnapshot(tuple(self._reading(g, t) for g in self._gpus.values()))

    def reading_at(self, unix_seconds: float) -> GPUSnapshot:
        """What the fleet reads at wall-clock time `unix_seconds` (before the start too), each
        GPU with its current pattern as if it had held it from the start: the demo's recorded
        history. Changes nothing."""
        t = unix_seconds - self._wall_start
        with self._lock:
            initial = [replace(g, since=0.0) for g in self._gpus.values()]
        return GPUSnapshot(tuple(self._reading(g, t) for g in initial))

    def allocation(self) -> api_pb2.ListPodResourcesResponse:
        """The kubelet's view of the fleet now: every pod a GPU is allocated to (all patterns but
        `unallocated`), holding `nvidia.com/gpu` with the GPU's UUID."""
        with self._lock:
            self._advance()
            return list_response(
                pod(
                    g.holder.namespace,
                    g.holder.pod,
                    container(g.holder.container, {"nvidia.com/gpu": [g.uuid]}),
                )
                for g in self._gpus.values()
                if g.pattern != "unallocated"
            )

    def pod_labels(self, namespace: str, name: str) -> Mapping[str, str]:
        """The labels of a simulated pod (what the kubelet's pod list would say)."""
        return self._labels.get((namespace, name), MappingProxyType({}))

    def _advance(self) -> float:
        t = self._clock() - self._start
        while self._schedule and self._schedule[0].at_seconds <= t:
            c = self._schedule.pop(0)
            self._apply(self._gpus[(c.node, c.gpu)], c.pattern, c.utilization, c.at_seconds)
        return t

    def _reading(self, g: _SimGPU, t: float) -> GPUReading:
        step = int(t)
        noise = (_hash(g.salt, step) % 1000) / 1000.0  # 0..1, changes each second
        pattern = g.pattern
        if pattern == "crashed" and t - g.since < self._crash_after:
            pattern = "busy"
        # Process attribution finds a holder only where a process runs.
        held = pattern not in ("unallocated", "allocated")
        if pattern == "busy":
            util, mem = 0.85 + 0.14 * noise, 0.70 + 0.2 * noise
        elif pattern == "bursty":
            phase = (t + g.salt % 120) % 120
            util = 0.90 + 0.09 * noise if phase < 30 else 0.01 + 0.04 * noise
            mem = 0.45
        elif pattern == "idle":
            util, mem = 0.02 * noise, 0.30
        elif pattern == "crashed":
            util, mem = 0.0, 0.75
        elif pattern == "steady":
            util, mem = g.utilization, 0.50
        elif pattern == "allocated":
            util, mem = 0.0, 0.0
        elif pattern == "light":
            util, mem = 0.08 + 0.08 * noise, 0.08
        elif pattern == "office":
            util, mem = (
                (0.60 + 0.2 * noise, 0.6) if office_hours(self._wall_start + t) else (0.0, 0.6)
            )
        else:
            util, mem = 0.0, 0.0
        util = round(util, 2)  # NVML and dcgm-exporter report whole percents
        idle_watts = g.tdp * 0.1
        return GPUReading(
            node=g.node,
            index=g.index,
            uuid=g.uuid,
            model=g.model,
            utilization_ratio=util,
            memory_used_bytes=int(g.memory_total * mem),
            memory_total_bytes=g.memory_total,
            power_watts=round(idle_watts + (g.tdp - idle_watts) * util, 1),
            holders=(g.holder,) if held else (),
        )


def office_hours(unix_seconds: float) -> bool:
    """Whether `unix_seconds` falls in OFFICE_HOURS of a weekday (UTC)."""
    when = datetime.fromtimestamp(unix_seconds, UTC)
    return when.weekday() < 5 and OFFICE_HOURS[0] <= when.hour < OFFICE_HOURS[1]
