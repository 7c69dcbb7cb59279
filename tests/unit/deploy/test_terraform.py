"""terraform/: it parses, every module, provider and chart is pinned, every variable and output
is documented, and the local Kafka chart renders valid Strimzi resources."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import hcl2
import helm_python as helm
import yaml

from support.k8s_schemas import load_manifests, validate

REPO = Path(__file__).resolve().parents[3]
TF = REPO / "terraform"
KAFKA_CHART = TF / "charts" / "kafka-cluster"
EXACT_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals and wraps expressions in ${...}."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _blocks(kind: str) -> dict[str, dict[str, Any]]:
    """Every `kind "name" {...}` block of terraform/*.tf by name (resources: "type.name")."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(TF.glob("*.tf")):
        with path.open(encoding="utf-8") as f:
            doc = hcl2.load(f)
        for entry in doc.get(kind, []):
            for name, body in entry.items():
                if kind == "resource":
                    for rname, rbody in body.items():
                        out[f"{_unquote(name)}.{_unquote(rname)}"] = rbody
                else:
                    out[_unquote(name)] = body
    return out


def test_every_file_parses():
    files = sorted(TF.glob("*.tf"))
    assert {f.name for f in files} >= {"versions.tf", "main.tf", "variables.tf", "outputs.tf"}
    for path in files:
        with path.open(encoding="utf-8") as f:
            assert hcl2.load(f), path.name


def test_providers_and_terraform_are_pinned():
    terraform = []
    for path in TF.glob("*.tf"):
        with path.open(encoding="utf-8") as f:
            terraform += hcl2.load(f).get("terraform", [])
    (block,) = terraform
    assert _unquote(block["required_version"]).startswith(">= 1.")
    (providers,) = block["required_providers"]
    providers = {k: v for k, v in providers.items() if not k.startswith("__")}
    assert {"aws", "helm"} <= providers.keys()
    for name, spec in providers.items():
        assert EXACT_VERSION.match(_unquote(spec["version"])), f"provider {name} is not pinned"
        assert _unquote(spec["source"]).startswith("hashicorp/")


def test_remote_state_example_is_present_and_commented():
    text = (TF / "versions.tf").read_text()
    assert re.search(r'^\s*#\s*backend "s3" \{', text, re.M)
    assert not re.search(r'^\s*backend "', text, re.M)


def test_modules_are_the_public_ones_pinned_exactly():
    modules = _blocks("module")
    sources = {name: _unquote(m["source"]) for name, m in modules.items()}
    assert sources == {
        "vpc": "terraform-aws-modules/vpc/aws",
        "eks": "terraform-aws-modules/eks/aws",
    }
    for name, module in modules.items():
        assert EXACT_VERSION.match(_unquote(module["version"])), f"module {name} is not pinned"


def test_every_variable_has_a_description_and_type():
    variables = _blocks("variable")
    assert len(variables) >= 10
    for name, var in variables.items():
        assert len(_unquote(var.get("description", ""))) > 10, f"variable {name}: no description"
        assert "type" in var, f"variable {name}: no type"


def test_every_output_is_described():
    outputs = _blocks("output")
    assert {"cluster_name", "kafka_bootstrap_servers", "kubeconfig_command"} <= outputs.keys()
    for name, out in outputs.items():
        assert _unquote(out.get("description", "")), f"output {name}: no description"


def test_helm_releases_are_pinned_and_complete():
    releases = {k: v for k, v in _blocks("resource").items() if k.startswith("helm_release.")}
    charts = {_unquote(r["chart"]): r for r in releases.values()}
    for chart in (
        "strimzi-kafka-operator",
        "kube-prometheus-stack",
        "opencost",
        "dcgm-exporter",
        "nvidia-device-plugin",
    ):
        assert chart in charts, f"no helm_release for {chart}"
        assert EXACT_VERSION.match(_unquote(charts[chart]["version"])), f"{chart} is not pinned"
    local = {c for c in charts if c.startswith("${path.module}")}
    assert local == {"${path.module}/charts/kafka-cluster", "${path.module}/../charts/aifinops"}
    kps = charts["kube-prometheus-stack"]
    assert kps["values"] == [
        '${file("${path.module}/../charts/kube-prometheus-stack-values.yaml")}'
    ]


def test_kube_state_metrics_exposes_the_pod_team_label_the_rules_and_gpu_exporter_read():
    """The kube-prometheus-stack values the Terraform installs allowlist the pod label that names
    a team; the shipped rules attribute Kubernetes costs by that label (label_<key>) and the GPU
    exporter resolves GPU holders by the same key, so a pod's costs all land on one team."""
    from aifinops.exporters.config import GPUConfig

    kps = yaml.safe_load((REPO / "charts" / "kube-prometheus-stack-values.yaml").read_text())
    ksm = kps["kube-state-metrics"]
    [allow] = [a for a in ksm["metricLabelsAllowlist"] if a.startswith("pods=")]
    key = re.fullmatch(r"pods=\[([^\],]+)\]", allow).group(1)
    assert key == GPUConfig().team_label
    burn = (REPO / "rules" / "aifinops-burn.yaml").read_text()
    assert f'kube_pod_labels{{job=~"kube-state-metrics|opencost", label_{key}!=""}}' in burn
    # Its own namespace and pod labels are what OpenCost's costs are joined on.
    assert ksm["prometheus"]["monitor"]["honorLabels"] is True


def test_node_groups_system_and_tainted_gpu():
    text = (TF / "main.tf").read_text()
    variables = _blocks("variable")
    assert _unquote(variables["system_instance_type"]["default"]) == "t3.large"
    assert variables["system_node_count"]["default"] == 3
    assert _unquote(variables["gpu_instance_type"]["default"]).startswith(("g5.", "g6."))
    assert variables["gpu_node_group_enabled"]["default"] is False
    assert 'key    = "nvidia.com/gpu"' in text and 'effect = "NO_SCHEDULE"' in text
    assert '"nvidia.com/gpu.present" = "true"' in text  # the aifinops GPU exporter's nodeSelector


def test_kafka_cluster_chart_renders_a_3_broker_kraft_cluster():
    assert helm.lint(KAFKA_CHART, strict=True)["errors"] == []
    with helm.Chart.load(KAFKA_CHART) as chart:
        docs = load_manifests(chart.render(name="kafka", namespace="kafka"))
    assert [validate(d) for d in docs] == ["crd", "crd", "crd"]
    pool = next(d for d in docs if d["kind"] == "KafkaNodePool")
    kafka = next(d for d in docs if d["kind"] == "Kafka")
    assert pool["spec"]["replicas"] == 3
    assert sorted(pool["spec"]["roles"]) == ["broker", "controller"]
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    assert kafka["spec"]["kafka"]["config"]["min.insync.replicas"] == 2
    assert "topicOperator" in kafka["spec"]["entityOperator"]
    # The aifinops chart's default bootstrap address names this cluster's plain listener.
    with helm.Chart.load(REPO / "charts" / "aifinops") as chart:
        assert chart.values["strimzi"]["clusterName"] == kafka["metadata"]["name"]
    plain = next(
        listener for listener in kafka["spec"]["kafka"]["listeners"] if not listener["tls"]
    )
    assert plain["port"] == 9092


def test_kafka_cluster_exports_consumer_lag_and_broker_metrics_to_kube_prometheus_stack():
    with helm.Chart.load(KAFKA_CHART) as chart:
        docs = load_manifests(chart.render(name="kafka", namespace="kafka"))
    kafka = next(d for d in docs if d["kind"] == "Kafka")
    # Strimzi's Kafka Exporter reports every consumer group on the three aifinops topics.
    exporter = kafka["spec"]["kafkaExporter"]
    with helm.Chart.load(REPO / "charts" / "aifinops") as chart:
        topics = chart.values["kafka"]["topics"]
    for key in ("usage", "gpu", "anomalies"):
        assert re.fullmatch(exporter["topicRegex"], topics[key]["name"]), key
    assert not re.fullmatch(exporter["topicRegex"], topics["usageDlq"]["name"])
    assert exporter["groupRegex"] == ".*"
    assert kafka["spec"]["kafka"]["metricsConfig"]["type"] == "strimziMetricsReporter"
    # The PodMonitor (valid against the vendored CRD) selects this cluster's Strimzi pods on the
    # port both the brokers and the exporter serve metrics on.
    monitor = next(d for d in docs if d["kind"] == "PodMonitor")
    assert validate(monitor) == "crd"
    assert monitor["spec"]["selector"]["matchLabels"] == {
        "strimzi.io/cluster": kafka["metadata"]["name"],
        "strimzi.io/kind": "Kafka",
    }
    assert [e["port"] for e in monitor["spec"]["podMetricsEndpoints"]] == ["tcp-prometheus"]
    # The shipped kube-prometheus-stack values select PodMonitors in every namespace.
    kps = yaml.safe_load((REPO / "charts" / "kube-prometheus-stack-values.yaml").read_text())
    spec = kps["prometheus"]["prometheusSpec"]
    assert spec["podMonitorSelectorNilUsesHelmValues"] is False
    assert spec["podMonitorNamespaceSelector"] == {}
    # Turned off, neither the exporter nor the monitor is rendered.
    with helm.Chart.load(KAFKA_CHART) as chart:
        off = load_manifests(
            chart.render(
                name="kafka",
                namespace="kafka",
                values={"kafkaExporter": {"enabled": False}, "metrics": {"enabled": False}},
            )
        )
    assert [d["kind"] for d in off] == ["KafkaNodePool", "Kafka"]
    assert "kafkaExporter" not in off[1]["spec"]
