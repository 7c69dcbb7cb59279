"""The demo's OpenCost: a `/metrics` endpoint serving a fixed exposition for the simulated cluster in
OpenCost's exact metric names, labels and help texts (pkg/costmodel/metrics.go), so the demo's
Prometheus records Kubernetes costs per team and the GPU exporter reads node GPU prices from it.

The cluster: the simulator's two GPU nodes (`sim-node-0`, `sim-node-1`) and one CPU node, the pods
the simulator places on the GPU nodes (namespaces `ml-training`, `inference`, `research`) with their
CPU and memory, a volume of checkpoints, and CPU workloads of the LLM teams' own namespaces. OpenCost
prices `sim-node-0`'s GPUs at the table's H100 price (the demo's GPU figures stay the table's) and
has no GPU price for `sim-node-1` (0), so the GPU dashboard shows both price sources. Like OpenCost,
it also writes `kube_pod_labels` (its copy of kube-state-metrics' family, every pod label), whose
`team` label the rules attribute each pod's Kubernetes costs by before the namespace map.
"""

from __future__ import annotations

import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GIB = 1 << 30

# node -> (instance type, $/core-hour, $/GiB-hour, $/GPU-hour, GPUs, spot)
NODES: dict[str, tuple[str, float, float, float, int, bool]] = {
    "cpu-node-0": ("m6i.4xlarge", 0.048, 0.0064, 0.0, 0, False),
    "sim-node-0": ("p5.48xlarge", 0.04, 0.005, 6.88, 4, False),
    "sim-node-1": ("p4de.24xlarge", 0.04, 0.005, 0.0, 4, False),
}
# (namespace, pod, container, node) -> (cores, GiB, GPUs)
CONTAINERS: dict[tuple[str, str, str, str], tuple[float, float, int]] = {
    ("ml-training", "llm-finetune-0-0", "llm-finetune", "sim-node-0"): (16, 128, 1),
    ("inference", "chat-api-0-1", "chat-api", "sim-node-0"): (8, 32, 1),
    ("research", "notebook-1-1", "notebook", "sim-node-1"): (4, 16, 1),
    ("search", "ranker-7d9c8-x2kq", "ranker", "cpu-node-0"): (6, 12, 0),
    ("support", "chatbot-5f6b7-qq2lp", "chatbot", "cpu-node-0"): (4, 8, 0),
    ("platform", "gateway-64c9d-7mz4k", "gateway", "cpu-node-0"): (2, 4, 0),
    ("kube-system", "coredns-6d4b75cb6d-2x7hn", "coredns", "cpu-node-0"): (0.1, 0.07, 0),
}
# (namespace, pod) -> the pod's labels: the GPU pods' as the simulator gives them (the exporter's
# holders: exporters/gpu/simulated.py), the others as their deployments would; a pod without a
# `team` label goes to its namespace's team.
POD_LABELS: dict[tuple[str, str], dict[str, str]] = {
    ("ml-training", "llm-finetune-0-0"): {"app": "llm-finetune", "team": "nlp"},
    ("inference", "chat-api-0-1"): {"app": "chat-api", "team": "platform"},
    ("research", "notebook-1-1"): {"app": "notebook"},
    ("search", "ranker-7d9c8-x2kq"): {"app": "ranker", "team": "search"},
    ("support", "chatbot-5f6b7-qq2lp"): {"app": "chatbot", "team": "support"},
    ("platform", "gateway-64c9d-7mz4k"): {"app": "gateway", "team": "platform"},
    ("kube-system", "coredns-6d4b75cb6d-2x7hn"): {"app": "coredns"},
}
# (namespace, pod, claim, volume) -> GiB the pod holds; volume -> $/GiB-hour
CLAIMS: dict[tuple[str, str, str, str], float] = {
    ("ml-training", "llm-finetune-0-0", "checkpoints-llm-finetune-0", "pvc-5f1e2d3c"): 500,
}
VOLUMES: dict[str, float] = {"pvc-5f1e2d3c": 0.000109589}


def _series(name: str, labels: dict[str, str], value: float) -> str:
    inner = ",".join(f'{k}="{labels[k]}"' for k in sorted(labels))
    # The shortest text that reads back as the same float (what Go's client prints, in its
    # own notation); %g would round byte counts.
    text = repr(float(value))
    return f"{name}{{{inner}}} {text.removesuffix('.0')}"


def _family(name: str, help_text: str, lines: list[str]) -> list[str]:
    return [f"# HELP {name} {name} {help_text}", f"# TYPE {name} gauge", *lines]


def exposition() -> str:
    """The demo cluster's OpenCost `/metrics` text."""

    def node_labels(node: str) -> dict[str, str]:
        itype = NODES[node][0]
        return {
            "arch": "amd64",
            "instance": node,
            "instance_type": itype,
            "node": node,
            "provider_id": f"aws:///us-east-1a/i-0c0ffee00000000{sorted(NODES).index(node)}",
            "region": "us-east-1",
        }

    def per_node(name: str, help_text: str, value: int) -> list[str]:
        return _family(
            name,
            help_text,
            [_series(name, node_labels(n), float(NODES[n][value])) for n in sorted(NODES)],
        )

    def per_container(name: str, help_text: str, value: int, scale: float) -> list[str]:
        lines = []
        for (ns, pod, ctr, node), row in sorted(CONTAINERS.items()):
            if row[value] or value == 0:
                labels = {"container": ctr, "instance": node, "namespace": ns, "node": node}
                lines.append(_series(name, {**labels, "pod": pod}, row[value] * scale))
        return _family(name, help_text, lines)

    out: list[str] = []
    out += per_container(
        "container_cpu_allocation", "Percent of a single CPU used in a minute", 0, 1
    )
    out += per_container("container_gpu_allocation", "GPU used", 2, 1)
    out += per_container("container_memory_allocation_bytes", "Bytes of RAM used", 1, GIB)
    out += _family(
        "kube_pod_labels",
        "all labels for each pod prefixed with label_",
        [
            _series(
                "kube_pod_labels",
                {
                    **{f"label_{k}": v for k, v in labels.items()},
                    "namespace": ns,
                    "pod": pod,
                    "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"demo-pod/{ns}/{pod}")),
                },
                1,
            )
            for (ns, pod), labels in sorted(POD_LABELS.items())
        ],
    )
    out += per_node("kubecost_node_is_spot", "Cloud provider info about node preemptibility", 5)
    out += per_node("node_cpu_hourly_cost", "hourly cost for each cpu on this node", 1)
    out += per_node("node_gpu_count", "count of gpu on this node", 4)
    out += per_node("node_gpu_hourly_cost", "hourly cost for each gpu on this node", 3)
    out += per_node("node_ram_hourly_cost", "hourly cost for each gb of ram on this node", 2)
    out += _family(
        "pod_pvc_allocation",
        "Bytes used by a PVC attached to a pod",
        [
            _series(
                "pod_pvc_allocation",
                {
                    "namespace": ns,
                    "persistentvolume": pv,
                    "persistentvolumeclaim": claim,
                    "pod": pod,
                },
                gib * GIB,
            )
            for (ns, pod, claim, pv), gib in sorted(CLAIMS.items())
        ],
    )
    out += _family(
        "pv_hourly_cost",
        "Cost per GB per hour on a persistent disk",
        [
            _series(
                "pv_hourly_cost",
                {"persistentvolume": pv, "provider_id": f"vol-{pv[4:]}", "volumename": pv},
                price,
            )
            for pv, price in sorted(VOLUMES.items())
        ],
    )
    return "\n".join(out) + "\n"


class OpenCostDemo:
    """Serves `exposition()` at `http://127.0.0.1:<port>/metrics` on a background thread."""

    def __init__(self, port: int = 0) -> None:
        body = exposition().encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = int(self._httpd.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/metrics"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="opencost-demo", daemon=True
        )

    def start(self) -> None:
        """Start serving."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
