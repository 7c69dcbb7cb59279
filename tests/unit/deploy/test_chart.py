"""The Helm chart, rendered by Helm's own engine (helm-python-sdk): every manifest the API server and
the operators' CRDs accept, the fast-path settings, the generated rules and dashboards carried
exactly, and a configuration file the daemons load."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from aifinops.exporters.config import Config, TopicsConfig
from aifinops.exporters.runtime.config import load_config
from support.k8s_schemas import CRD_DIR, ManifestError, load_manifests, validate

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "aifinops"
KPS_VALUES = REPO / "charts" / "kube-prometheus-stack-values.yaml"
RELEASE, NAMESPACE = "aifinops", "finops"

_TOKEN = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"  # sha256("test")
_BCRYPT = "$2b$12$" + "a" * 53  # the shape of a bcrypt hash

SCENARIOS: dict[str, dict[str, Any]] = {
    "default": {},
    "gpu_off": {"gpuExporter": {"enabled": False}},
    "bridge_off": {"bridge": {"enabled": False}},
    # An external Kafka with SCRAM over TLS, as a managed Kafka (MSK, Confluent) needs.
    "strimzi_off": {
        "strimzi": {"enabled": False},
        "kafka": {
            "bootstrapServers": ["b-1.kafka.example:9096", "b-2.kafka.example:9096"],
            "securityProtocol": "SASL_SSL",
            "sasl": {
                "mechanism": "SCRAM-SHA-512",
                "username": "aifinops",
                "passwordSecret": {"name": "aifinops-kafka-user"},
            },
            "tls": {"caSecret": {"name": "kafka-ca"}},
        },
    },
    # No Kafka at all: the exporters alone, mirroring off.
    "no_kafka": {"strimzi": {"enabled": False}, "bridge": {"enabled": False}},
    "everything_on": {
        "image": {"digest": "sha256:" + "a" * 64},
        "cluster": "prod-eu",
        "kafka": {
            "securityProtocol": "SSL",
            "tls": {
                "caSecret": {"name": "aifinops-cluster-ca-cert"},
                "clientSecret": {"name": "aifinops-user"},
            },
        },
        "strimzi": {"bootstrapPort": 9093, "namespace": "kafka"},
        "gpuExporter": {
            "source": "dcgm",
            "dcgmUrl": "http://$(HOST_IP):9400/metrics",
            "hostPID": True,
            "runtimeClassName": "",
            "rbac": {"kubeletProxy": True},
            # Helm merges maps: null removes the default key.
            "nodeSelector": {
                "nvidia.com/gpu.present": None,
                "node.kubernetes.io/instance-type": "g6.xlarge",
            },
        },
        "tokenExporter": {
            "auth": {"enabled": True, "tokens": [{"sha256": _TOKEN, "team": "search"}]},
            "service": {"type": "LoadBalancer"},
        },
        "bridge": {"replicas": 3},
        "prices": {"gpu": {"g6.xlarge": {"hourly_usd": "0.8048"}}},
        "networkPolicy": {
            "metricsFrom": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}],
            "ingestFrom": [{"namespaceSelector": {"matchLabels": {"llm-gateway": "true"}}}],
            "webhookFrom": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}],
        },
        "config": {"tokens": {"max_batch_events": 500}},
    },
    # HTTPS with client certificates and basic auth on every daemon (--web.config.file).
    "web_tls": {
        "web": {
            "tls": {
                "enabled": True,
                "secretName": "aifinops-web-tls",
                "minVersion": "TLS13",
                "clientAuthType": "RequireAndVerifyClientCert",
            },
            "basicAuthUsers": {"prometheus": _BCRYPT},
        },
        "serviceMonitor": {"basicAuthSecret": "aifinops-scrape-auth"},
    },
}


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """All manifests of the chart for `values`, as Helm renders them for an install."""
    with helm.Chart.load(CHART) as chart:
        out = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return load_manifests(out)


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {name: render(values) for name, values in SCENARIOS.items()}


# --- every manifest is valid -------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_manifest_validates(rendered, scenario):
    docs = rendered[scenario]
    assert docs
    how = [validate(doc) for doc in docs]
    assert "core" in how


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_helm_lint_is_clean(scenario):
    report = helm.lint(CHART, SCENARIOS[scenario], strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert problems == []


def test_validation_rejects_what_the_api_server_would():
    """The validator is not vacuous: a misspelt field fails for core kinds and for CRDs alike."""
    docs = render()
    monitor = copy.deepcopy(by_kind(docs, "ServiceMonitor")[0])
    monitor["spec"]["endpoints"][0]["scrapeIntervall"] = "5s"
    with pytest.raises(ManifestError, match="scrapeIntervall"):
        validate(monitor)
    topic = copy.deepcopy(by_kind(docs, "KafkaTopic")[0])
    topic["spec"]["partitions"] = 0
    with pytest.raises(ManifestError, match="partitions"):
        validate(topic)
    deployment = copy.deepcopy(by_kind(docs, "Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(ManifestError, match="readinesProbe"):
        validate(deployment)


@pytest.mark.parametrize(
    ("scenario", "present", "absent"),
    [
        ("default", {"DaemonSet", "Deployment", "KafkaTopic", "AlertmanagerConfig"}, set()),
        ("gpu_off", {"Deployment", "KafkaTopic"}, {"DaemonSet", "ClusterRole"}),
        ("bridge_off", {"DaemonSet", "KafkaTopic"}, {"AlertmanagerConfig"}),
        ("strimzi_off", {"DaemonSet", "AlertmanagerConfig"}, {"KafkaTopic"}),
        ("no_kafka", {"DaemonSet", "Deployment"}, {"KafkaTopic", "AlertmanagerConfig"}),
    ],
)
def test_components_follow_their_switches(rendered, scenario, present, absent):
    kinds = {d["kind"] for d in rendered[scenario]}
    assert present <= kinds
    assert not absent & kinds
    names = {d["metadata"]["name"] for d in rendered[scenario] if d["kind"] == "Deployment"}
    if scenario == "bridge_off" or scenario == "no_kafka":
        assert names == {"aifinops-token-exporter"}


# --- the configuration file the daemons read -----------------------------------------------------


def _config_text(docs: list[dict[str, Any]]) -> str:
    return one(docs, "ConfigMap", "aifinops-config")["data"]["config.yaml"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_rendered_config_loads_with_the_daemons_schema(rendered, scenario, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(_config_text(rendered[scenario]), encoding="utf-8")
    config = load_config(Config, path, environ={})
    secrets = [s for s in by_kind(rendered[scenario], "Secret") if "config.yaml" in s["stringData"]]
    for secret in secrets:
        path.write_text(secret["stringData"]["config.yaml"], encoding="utf-8")
        assert load_config(Config, path, environ={}).tokens.auth.enabled
    if scenario == "default":
        assert config.kafka.bootstrap_servers == ("aifinops-kafka-bootstrap.finops.svc:9092",)
    if scenario == "no_kafka":
        assert config.kafka.bootstrap_servers == ()


def test_default_topics_are_design_md_topics(rendered, tmp_path):
    """Names, partitions and retention equal the config schema's defaults (docs/architecture.md's table);
    only the replication differs (3 brokers in a production cluster)."""
    path = tmp_path / "config.yaml"
    path.write_text(_config_text(rendered["default"]), encoding="utf-8")
    topics = load_config(Config, path, environ={}).kafka.topics
    for field in ("usage", "gpu", "anomalies", "usage_dlq", "gpu_dlq"):
        ours, design = getattr(topics, field), getattr(TopicsConfig(), field)
        assert (ours.name, ours.partitions, ours.retention_ms) == (
            design.name,
            design.partitions,
            design.retention_ms,
        )
        assert ours.replication_factor == 3


def test_kafka_credentials_are_mounted_files(rendered, tmp_path):
    docs = rendered["strimzi_off"]
    path = tmp_path / "config.yaml"
    path.write_text(_config_text(docs), encoding="utf-8")
    kafka = load_config(Config, path, environ={}).kafka
    assert kafka.security_protocol == "SASL_SSL"
    assert kafka.sasl_mechanism == "SCRAM-SHA-512"
    assert kafka.bootstrap_servers == ("b-1.kafka.example:9096", "b-2.kafka.example:9096")
    for workload in by_kind(docs, "Deployment") + by_kind(docs, "DaemonSet"):
        pod = workload["spec"]["template"]["spec"]
        mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        sasl = volumes[mounts[str(Path(kafka.sasl_password_file).parent)]]["secret"]
        assert sasl["secretName"] == "aifinops-kafka-user"
        assert sasl["items"] == [{"key": "password", "path": Path(kafka.sasl_password_file).name}]
        ca = volumes[mounts[str(Path(kafka.ssl_cafile).parent)]]["secret"]
        assert ca["secretName"] == "kafka-ca"
        # Secrets reach the daemons as files only.
        env = pod["containers"][0].get("env", [])
        assert all("secretKeyRef" not in e.get("valueFrom", {}) for e in env)


def _mounted(pod: dict[str, Any], path: str) -> dict[str, Any]:
    """The volume a container path lives on (the longest mount path containing it)."""
    mounts = pod["containers"][0]["volumeMounts"]
    best = max(
        (m for m in mounts if path == m["mountPath"] or path.startswith(m["mountPath"] + "/")),
        key=lambda m: len(m["mountPath"]),
    )
    assert not best.get("readOnly") or "spool" not in path
    return next(v for v in pod["volumes"] if v["name"] == best["name"])


def test_files_the_config_names_are_mounted(rendered, tmp_path):
    """The spool is writable under a read-only root, and price tables are where the config says."""
    docs = rendered["everything_on"]
    path = tmp_path / "config.yaml"
    path.write_text(_config_text(docs), encoding="utf-8")
    config = load_config(Config, path, environ={})
    prices = one(docs, "ConfigMap", "aifinops-prices")["data"]
    assert yaml.safe_load(prices[Path(config.gpu.price_table).name]) == {
        "g6.xlarge": {"hourly_usd": "0.8048"}
    }
    assert config.llm.pricing.overrides_file is None  # no llm table given
    for workload in by_kind(docs, "Deployment") + by_kind(docs, "DaemonSet"):
        pod = workload["spec"]["template"]["spec"]
        assert "emptyDir" in _mounted(pod, config.producer.spool_dir)
        assert "emptyDir" in _mounted(pod, config.bridge.state_dir)
        # Relative default paths resolve under the working directory: writable too.
        assert "emptyDir" in _mounted(pod, pod["containers"][0]["workingDir"] + "/data")
        assert _mounted(pod, config.gpu.price_table)["configMap"]["name"] == "aifinops-prices"
    spool = next(v for v in pod["volumes"] if v["name"] == "data")["emptyDir"]["sizeLimit"]
    assert int(spool) == config.producer.spool_max_bytes + 64 * 1024 * 1024


def test_ingest_tokens_live_in_a_secret_not_the_configmap(rendered):
    docs = rendered["everything_on"]
    assert _TOKEN not in _config_text(docs)
    secret = one(docs, "Secret", "aifinops-token-exporter")
    assert _TOKEN in secret["stringData"]["config.yaml"]
    pod = one(docs, "Deployment", "aifinops-token-exporter")["spec"]["template"]["spec"]
    config_volume = next(v for v in pod["volumes"] if v["name"] == "config")
    assert config_volume["secret"]["secretName"] == "aifinops-token-exporter"
    # The other daemons keep reading the shared ConfigMap.
    bridge = one(docs, "Deployment", "aifinops-bridge")["spec"]["template"]["spec"]
    assert next(v for v in bridge["volumes"] if v["name"] == "config")["configMap"]


def test_existing_secret_replaces_the_rendered_one():
    docs = render({"tokenExporter": {"auth": {"enabled": True, "existingSecret": "my-ingest"}}})
    assert not by_kind(docs, "Secret")
    pod = one(docs, "Deployment", "aifinops-token-exporter")["spec"]["template"]["spec"]
    assert next(v for v in pod["volumes"] if v["name"] == "config")["secret"]["secretName"] == (
        "my-ingest"
    )


# --- values.schema.json and the render-time checks -----------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"tokenExporter": {"replica": 3}}, "replica"),
        ({"serviceMonitor": {"intervall": "5s"}}, "intervall"),
        ({"bridge": {"replicas": "two"}}, "replicas"),
        ({"gpuExporter": {"hostPID": "yes"}}, "hostPID"),
        ({"gpuExporter": {"source": "nvidia-smi"}}, "source"),
        ({"kafka": {"bootstrapServers": ["kafka-without-port"]}}, "bootstrapServers"),
        (
            {"tokenExporter": {"auth": {"tokens": [{"sha256": "not-a-hash", "team": "a"}]}}},
            "sha256",
        ),
    ],
)
def test_schema_rejects_misspelt_keys_and_wrong_types(values, message):
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema({})
        with pytest.raises(helm.HelmError, match=message):
            chart.validate_schema(values)
        with pytest.raises(helm.HelmError, match=message):
            chart.render(values, name=RELEASE, namespace=NAMESPACE)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"bridge": {"replicas": 11}}, r"bridge.replicas \(11\) must not exceed .* \(10\)"),
        (
            {"bridge": {"replicas": 4}, "kafka": {"topics": {"gpu": {"partitions": 3}}}},
            r"bridge.replicas \(4\) must not exceed .* \(3\)",
        ),
        ({"strimzi": {"enabled": False}}, "bridge.enabled needs Kafka"),
        ({"kafka": {"securityProtocol": "SASL_SSL"}}, "kafka.sasl.mechanism: required"),
        ({"tokenExporter": {"auth": {"enabled": True}}}, "tokenExporter.auth.enabled needs"),
        ({"gpuExporter": {"source": "dcgm"}}, "gpuExporter.dcgmUrl: required"),
    ],
)
def test_contradictory_values_fail_the_render_naming_the_value(values, message):
    with pytest.raises(helm.HelmError, match=message):
        render(values)


def test_bridge_may_run_one_replica_per_partition():
    docs = render({"bridge": {"replicas": 10}})
    assert one(docs, "Deployment", "aifinops-bridge")["spec"]["replicas"] == 10


def _schema_paths(schema: dict[str, Any], prefix: str = "") -> list[str]:
    root = json.loads((CHART / "values.schema.json").read_text())
    paths = []
    for key, sub in schema.get("properties", {}).items():
        if "$ref" in sub:
            sub = root["definitions"][sub["$ref"].rsplit("/", 1)[1]]
        path = f"{prefix}{key}"
        paths.append(path)
        paths += _schema_paths(sub, path + ".")
    return paths


def _commented_value_paths() -> dict[str, bool]:
    """Path of every key line in values.yaml -> whether a comment line sits right above it."""
    out, stack, previous = {}, [], ""
    for line in (CHART / "values.yaml").read_text().splitlines():
        match = re.match(r"^(\s*)([A-Za-z0-9_.\-/\"]+):", line)
        if match and not line.lstrip().startswith("-"):
            indent = len(match.group(1))
            stack = [(i, k) for i, k in stack if i < indent] + [(indent, match.group(2))]
            out[".".join(k for _, k in stack)] = previous.lstrip().startswith("#")
        if line.strip():
            previous = line
    return out


def test_every_values_key_is_commented_and_typed():
    schema = json.loads((CHART / "values.schema.json").read_text())
    declared = [p for p in _schema_paths(schema) if p != "global"]
    commented = _commented_value_paths()
    missing = [p for p in declared if p not in commented]
    uncommented = [p for p in declared if p in commented and not commented[p]]
    assert missing == [], "schema keys absent from values.yaml"
    assert uncommented == [], "values.yaml keys without a comment"
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(chart.values)


# --- the generated rule pack and dashboards --------------------------------------------------------


def test_prometheus_rule_holds_exactly_the_generated_rules(rendered):
    expected = []
    for path in sorted((REPO / "rules").glob("*.yaml")):
        expected += yaml.safe_load(path.read_text()).get("groups") or []
    rules = by_kind(rendered["default"], "PrometheusRule")
    if not expected:
        assert rules == []
        return
    assert len(rules) == 1
    assert rules[0]["spec"]["groups"] == expected
    labelled = render({"prometheusRule": {"labels": {"release": "kube-prometheus-stack"}}})
    assert by_kind(labelled, "PrometheusRule")[0]["metadata"]["labels"]["release"] == (
        "kube-prometheus-stack"
    )


def test_dashboard_configmaps_equal_the_generated_dashboards(rendered):
    expected = {p.name: json.loads(p.read_text()) for p in (REPO / "dashboards").glob("*.json")}
    maps = [
        c
        for c in by_kind(rendered["default"], "ConfigMap")
        if "grafana_dashboard" in c["metadata"]["labels"]
    ]
    got = {}
    for cm in maps:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert cm["metadata"]["annotations"]["grafana_folder"] == "AIFinOps"
        ((name, text),) = cm["data"].items()
        got[name] = json.loads(text)
    assert got == expected


def test_chart_copies_match_the_generated_sources():
    for kind, pattern in (("rules", "*.yaml"), ("dashboards", "*.json")):
        source = {p.name: p.read_text() for p in (REPO / kind).glob(pattern)}
        copies = {p.name: p.read_text() for p in (CHART / "files" / kind).glob(pattern)}
        assert copies == source, f"run `make generate`: charts/aifinops/files/{kind} is stale"


# --- the fast path ---------------------------------------------------------------------------------


def test_service_monitors_scrape_every_cost_target_every_5s(rendered):
    docs = rendered["default"]
    services = {s["metadata"]["name"]: s for s in by_kind(docs, "Service")}
    monitors = by_kind(docs, "ServiceMonitor")
    assert {m["metadata"]["name"] for m in monitors} == set(services)
    for monitor in monitors:
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["interval"] == "5s"
        assert endpoint["scrapeTimeout"] == "4s"
        assert endpoint["honorLabels"] is True
        service = services[monitor["metadata"]["name"]]
        selector = monitor["spec"]["selector"]["matchLabels"]
        assert selector.items() <= service["metadata"]["labels"].items()
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
        job = service["metadata"]["labels"][monitor["spec"]["jobLabel"]]
        assert job == "aifinops-" + monitor["metadata"]["name"].removeprefix("aifinops-")


def _matches(route: dict[str, Any], labels: dict[str, str]) -> bool:
    """Alertmanager's matching: every matcher holds; regular expressions are anchored."""
    for m in route.get("matchers", []):
        value = labels.get(m["name"], "")
        ok = {
            "=": value == m["value"],
            "!=": value != m["value"],
            "=~": re.fullmatch(m["value"], value) is not None,
            "!~": re.fullmatch(m["value"], value) is None,
        }[m.get("matchType", "=")]
        if not ok:
            return False
    return True


def _route_for(spec: dict[str, Any], labels: dict[str, str]) -> dict[str, Any] | None:
    """The route an alert ends on (first matching child, else the top route), None if unrouted."""
    top = spec["route"]
    if not _matches(top, labels):
        return None
    return next((r for r in top.get("routes", []) if _matches(r, labels)), top)


def _generated_alerts() -> list[dict[str, Any]]:
    rules = []
    for path in sorted((REPO / "rules").glob("*.yaml")):
        for group in yaml.safe_load(path.read_text()).get("groups") or []:
            rules += [r for r in group["rules"] if "alert" in r]
    return rules


def test_alertmanager_config_sends_fast_tier_to_the_bridge_with_1s_group_wait(rendered):
    docs = rendered["default"]
    spec = one(docs, "AlertmanagerConfig", "aifinops")["spec"]
    (receiver,) = spec["receivers"]
    assert receiver["name"] == spec["route"]["receiver"]
    url = receiver["webhookConfigs"][0]["url"]
    assert url == "http://aifinops-bridge.finops.svc:9873/v1/alertmanager"
    assert one(docs, "Service", "aifinops-bridge")["spec"]["ports"][0]["port"] == 9873
    assert all(r["receiver"] == receiver["name"] for r in spec["route"]["routes"])

    fast = _route_for(spec, {"alertname": "AIFinOpsLLMSpendSpike", "aifinops_tier": "fast"})
    assert fast["groupWait"] == "1s"
    assert fast["groupBy"] == ["alertname", "team", "model"]
    burn = _route_for(spec, {"alertname": "AIFinOpsBudgetBurnFast", "aifinops_tier": "burn"})
    assert burn is spec["route"] and burn["groupWait"] == "30s"
    watchdog = _route_for(spec, {"alertname": "AIFinOpsWatchdog", "aifinops_tier": "pipeline"})
    assert watchdog["groupWait"] == "0s"
    assert _route_for(spec, {"alertname": "KubePodCrashLooping"}) is None

    # Whatever the rule pack generates: its tripwire alerts take the fast route, all others not.
    for rule in _generated_alerts():
        route = _route_for(spec, {"alertname": rule["alert"], **rule.get("labels", {})})
        assert route is not None, rule["alert"]
        is_fast = rule.get("labels", {}).get("aifinops_tier") == "fast"
        assert (route.get("groupWait") == "1s") == is_fast, rule["alert"]
    fast_names = {
        r["alert"]
        for r in _generated_alerts()
        if r.get("labels", {}).get("aifinops_tier") == "fast"
    }
    if fast_names:
        assert {
            "AIFinOpsLLMSpendSpike",
            "AIFinOpsLLMTokenRunaway",
            "AIFinOpsGPUSpendJump",
        } <= fast_names


def _parse_matcher(text: str) -> dict[str, str]:
    name, op, value = re.fullmatch(r'([a-zA-Z_][a-zA-Z0-9_]*)(=~|!~|!=|=)"(.*)"', text).groups()
    return {"name": name, "matchType": op, "value": value}


def test_alertmanager_config_carries_the_rule_packs_inhibitions(rendered):
    spec = one(rendered["default"], "AlertmanagerConfig", "aifinops")["spec"]
    pack = yaml.safe_load((REPO / "rules" / "alertmanager.yaml").read_text())
    expected = [
        {
            "sourceMatch": [_parse_matcher(m) for m in rule["source_matchers"]],
            "targetMatch": [_parse_matcher(m) for m in rule["target_matchers"]],
            **({"equal": rule["equal"]} if rule.get("equal") else {}),
        }
        for rule in pack["inhibit_rules"]
    ]
    assert expected, "the rule pack has no inhibitions to carry"
    assert spec["inhibitRules"] == expected
    # The outage inhibition silences the fast tier: a spike faked by a backlog must not page.
    outage = next(r for r in spec["inhibitRules"] if "AIFinOpsExporterDown" in str(r))
    assert _matches(
        {"matchers": outage["targetMatch"]}, {"aifinops_tier": "fast", "aifinops_source": "gpu"}
    )


def test_kube_prometheus_stack_values_select_the_charts_resources(rendered):
    kps = yaml.safe_load(KPS_VALUES.read_text())
    prom = kps["prometheus"]["prometheusSpec"]
    assert prom["ruleSelectorNilUsesHelmValues"] is False and prom["ruleSelector"] == {}
    assert prom["serviceMonitorSelectorNilUsesHelmValues"] is False
    assert prom["serviceMonitorSelector"] == {} and prom["serviceMonitorNamespaceSelector"] == {}
    assert prom["evaluationInterval"] == "30s"
    am = kps["alertmanager"]["alertmanagerSpec"]
    assert (
        am["alertmanagerConfigSelector"] == {} and am["alertmanagerConfigNamespaceSelector"] == {}
    )
    assert am["alertmanagerConfigMatcherStrategy"] == {"type": "None"}
    sidecar = kps["grafana"]["sidecar"]["dashboards"]
    with helm.Chart.load(CHART) as chart:
        dash = chart.values["grafanaDashboards"]
    assert (sidecar["label"], sidecar["labelValue"]) == (dash["label"], dash["labelValue"])
    assert sidecar["folderAnnotation"] == dash["folderAnnotation"]
    assert sidecar["searchNamespace"] == "ALL"


def test_kafka_topics_are_design_md_topics_for_the_strimzi_cluster(rendered):
    topics = {t["spec"]["topicName"]: t for t in by_kind(rendered["default"], "KafkaTopic")}
    day, week = 24 * 3600 * 1000, 7 * 24 * 3600 * 1000
    expected = {
        "gpu-utilization-events": (10, day),
        "ai-api-costs": (10, day),
        "cost-anomalies": (3, week),
        "ai-api-costs.dlq": (1, week),
        "gpu-utilization-events.dlq": (1, week),
    }
    assert {
        n: (t["spec"]["partitions"], t["spec"]["config"]["retention.ms"]) for n, t in topics.items()
    } == expected
    for topic in topics.values():
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "aifinops"
        assert topic["metadata"]["namespace"] == NAMESPACE
        assert topic["spec"]["config"]["min.insync.replicas"] == 2
    moved = render({"strimzi": {"clusterName": "shared", "namespace": "kafka"}})
    for topic in by_kind(moved, "KafkaTopic"):
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "shared"
        assert topic["metadata"]["namespace"] == "kafka"


# --- workloads ---------------------------------------------------------------------------------------


def test_gpu_exporter_daemonset_on_gpu_nodes(rendered):
    ds = one(rendered["default"], "DaemonSet", "aifinops-gpu-exporter")
    pod = ds["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    assert pod["runtimeClassName"] == "nvidia"
    assert "hostPID" not in pod
    assert pod["automountServiceAccountToken"] is True
    (container,) = pod["containers"]
    assert container["command"] == ["aifinops-gpu-exporter"]
    assert "--source=nvml" in container["args"]
    assert "--web.listen-address=:9871" in container["args"]
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert "resources" in container and "nvidia.com/gpu" not in str(container["resources"])
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    binding = one(rendered["default"], "ClusterRoleBinding", "aifinops-gpu-exporter")
    assert binding["subjects"][0]["name"] == pod["serviceAccountName"]
    rules = one(rendered["default"], "ClusterRole", "aifinops-gpu-exporter")["rules"]
    resources = {r for rule in rules for r in rule["resources"]}
    assert {"pods", "nodes", "nodes/pods"} <= resources and "nodes/proxy" not in resources

    custom = one(rendered["everything_on"], "DaemonSet", "aifinops-gpu-exporter")
    pod = custom["spec"]["template"]["spec"]
    assert pod["hostPID"] is True and "runtimeClassName" not in pod
    assert pod["nodeSelector"] == {"node.kubernetes.io/instance-type": "g6.xlarge"}
    assert "--dcgm.url=http://$(HOST_IP):9400/metrics" in pod["containers"][0]["args"]
    rules = one(rendered["everything_on"], "ClusterRole", "aifinops-gpu-exporter")["rules"]
    assert "nodes/proxy" in {r for rule in rules for r in rule["resources"]}


def test_token_exporter_has_a_service_and_disruption_budget(rendered):
    docs = rendered["default"]
    deployment = one(docs, "Deployment", "aifinops-token-exporter")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = one(docs, "Service", "aifinops-token-exporter")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["port"] == 9872
    pdb = one(docs, "PodDisruptionBudget", "aifinops-token-exporter")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1
    assert deployment["spec"]["replicas"] == 2


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_pods_are_hardened_and_probed(rendered, scenario):
    for workload in by_kind(rendered[scenario], "Deployment") + by_kind(
        rendered[scenario], "DaemonSet"
    ):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
            assert container["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
            assert container["readinessProbe"]["httpGet"]["path"] == "/-/ready"
            assert {"requests", "limits"} <= container["resources"].keys()


@pytest.mark.parametrize("scenario", ["default", "everything_on"])
def test_network_policies_admit_each_daemons_port(rendered, scenario):
    docs = rendered[scenario]
    workloads = by_kind(docs, "Deployment") + by_kind(docs, "DaemonSet")
    policies = {p["metadata"]["name"]: p for p in by_kind(docs, "NetworkPolicy")}
    assert set(policies) == {w["metadata"]["name"] for w in workloads}
    for workload in workloads:
        policy = policies[workload["metadata"]["name"]]["spec"]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert policy["podSelector"]["matchLabels"].items() <= labels.items()
        port = workload["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
        (rule,) = policy["ingress"]
        assert rule["ports"] == [{"port": port, "protocol": "TCP"}]
        if scenario == "default":
            assert "from" not in rule
    if scenario == "everything_on":
        token_from = policies["aifinops-token-exporter"]["spec"]["ingress"][0]["from"]
        assert len(token_from) == 2  # the scrapers and the gateways


def test_vendored_crds_are_the_shared_ones():
    shared = REPO.parent / "shared" / "crds"
    if not shared.is_dir():
        pytest.skip("no ../shared/crds next to this clone")
    for path in CRD_DIR.glob("*.yaml"):
        assert path.read_bytes() == (shared / path.name).read_bytes(), path.name


# --- TLS and basic auth (web config) ------------------------------------------------------------


def test_web_tls_and_basic_auth_reach_every_daemon_and_its_service_monitor(rendered, tmp_path):
    docs = rendered["web_tls"]
    secret = one(docs, "Secret", f"{RELEASE}-web-config")
    web = yaml.safe_load(secret["stringData"]["web-config.yaml"])
    assert web == {
        "tls_server_config": {
            "cert_file": "/etc/aifinops/web-tls/tls.crt",
            "key_file": "/etc/aifinops/web-tls/tls.key",
            "client_ca_file": "/etc/aifinops/web-tls/ca.crt",
            "client_auth_type": "RequireAndVerifyClientCert",
            "min_version": "TLS13",
        },
        "basic_auth_users": {"prometheus": _BCRYPT},
    }
    pods = by_kind(docs, "Deployment") + by_kind(docs, "DaemonSet")
    assert len(pods) == 3
    for workload in pods:
        pod = workload["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert "--web.config.file=/etc/aifinops/web/web-config.yaml" in container["args"]
        assert _mounted(pod, "/etc/aifinops/web-tls")["secret"]["secretName"] == "aifinops-web-tls"
        assert _mounted(pod, "/etc/aifinops/web")["secret"]["secretName"] == f"{RELEASE}-web-config"
        for probe in ("livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["scheme"] == "HTTPS"
    for monitor in by_kind(docs, "ServiceMonitor"):
        endpoint = monitor["spec"]["endpoints"][0]
        component = monitor["metadata"]["name"].removeprefix(f"{RELEASE}-")
        assert endpoint["scheme"] == "https"
        assert endpoint["tlsConfig"] == {
            "ca": {"secret": {"name": "aifinops-web-tls", "key": "ca.crt"}},
            "serverName": f"{RELEASE}-{component}.{NAMESPACE}.svc",
        }
        assert endpoint["basicAuth"]["password"] == {
            "name": "aifinops-scrape-auth",
            "key": "password",
        }
    # Without web settings nothing of it is rendered.
    default = rendered["default"]
    assert not [
        d for d in by_kind(default, "Secret") if d["metadata"]["name"].endswith("web-config")
    ]
    for monitor in by_kind(default, "ServiceMonitor"):
        assert "scheme" not in monitor["spec"]["endpoints"][0]


def test_web_tls_without_a_secret_fails_the_render():
    with pytest.raises(helm.HelmError, match=r"web\.tls\.secretName"):
        render({"web": {"tls": {"enabled": True}}})


def test_tripwires_reach_the_config_and_get_their_own_route(tmp_path):
    am_url = "http://kube-prometheus-stack-alertmanager.monitoring.svc:9093"
    docs = render(
        {
            "tripwires": {
                "requestUsd": 2.5,
                "teamTokensPerMinute": 12000000,
                "alertmanagerUrls": [am_url],
                "overrides": {
                    "research": {"request_usd": 50, "apps": {"batch": {"request_usd": 1}}}
                },
            }
        }
    )
    path = tmp_path / "config.yaml"
    path.write_text(_config_text(docs), encoding="utf-8")
    tripwires = load_config(Config, path, environ={}).tripwires
    assert tripwires.enabled
    assert (tripwires.request_usd, tripwires.team_usd_per_minute) == (2.5, 20)
    assert tripwires.team_tokens_per_minute == 12_000_000
    assert tripwires.alertmanager_urls == (am_url,)
    assert tripwires.overrides["research"].apps["batch"].request_usd == 1
    # The default renders the daemons' defaults, sending nowhere.
    path.write_text(_config_text(render()), encoding="utf-8")
    assert load_config(Config, path, environ={}).tripwires == Config().tripwires
    # The tripwire tier is routed on its own, sent with no group_wait.
    spec = one(docs, "AlertmanagerConfig", "aifinops")["spec"]
    labels = {
        "alertname": "AIFinOpsSpendTripwire",
        "aifinops_tier": "tripwire",
        "tripwire": "request_usd",
        "team": "ml",
    }
    route = _route_for(spec, labels)
    assert route is not None and route is not spec["route"]
    assert route["groupWait"] == "0s"
    assert {"team", "tripwire", "app", "model"} <= set(route["groupBy"])
    # The Terraform stack points the tripwires at kube-prometheus-stack's Alertmanager.
    tf = (REPO / "terraform" / "releases.tf").read_text()
    assert 'alertmanagerUrls = ["http://${local.kps_release}-alertmanager.' in tf
    # The schema refuses a URL the daemons would refuse at start.
    with pytest.raises(helm.HelmError, match="alertmanagerUrls"):
        render({"tripwires": {"alertmanagerUrls": ["alertmanager:9093"]}})
