"""Config loading: YAML plus environment plus flags into frozen dataclasses, every problem listed."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from aifinops.exporters.config import Config
from aifinops.exporters.runtime.config import ConfigError, describe, load_config

SHA = "a" * 64


def write(tmp_path, text):
    path = tmp_path / "aifinops.yml"
    path.write_text(text)
    return path


def test_defaults_need_no_file():
    config = load_config(Config, None, environ={})
    assert config.cluster == "default"
    assert config.kafka.bootstrap_servers == ()
    assert config.kafka.topics.usage.name == "ai-api-costs"
    assert config.kafka.topics.usage.partitions == 10
    assert config.kafka.topics.anomalies.partitions == 3
    assert config.gpu.source == "nvml"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.cluster = "x"  # type: ignore[misc]


def test_a_typo_and_a_missing_field_are_both_reported_with_their_paths(tmp_path):
    path = write(
        tmp_path,
        f"""
tokens:
  max_bach_events: 10
  auth:
    enabled: true
    tokens:
      - {{sha256: {SHA}, team: ml}}
      - {{sha256: {SHA}, team: search}}
      - {{sha256: {SHA}}}
""",
    )
    with pytest.raises(ConfigError) as err:
        load_config(Config, path, environ={})
    assert err.value.problems == [
        "tokens.max_bach_events: unknown key (did you mean max_batch_events?)",
        "tokens.auth.tokens[2].team: required",
    ]
    assert str(path) in str(err.value)


def test_wrong_types_and_failed_checks_are_all_listed(tmp_path):
    path = write(
        tmp_path,
        """
cluster: "bad name!"
log: {level: loud}
gpu: {source: dcgm, interval_seconds: fast}
kafka:
  bootstrap_servers: [localhost]
  security_protocol: SASL_SSL
tokens: {auth: {enabled: true, tokens: [{sha256: nothex, team: ml}]}}
""",
    )
    with pytest.raises(ConfigError) as err:
        load_config(Config, path, environ={})
    problems = err.value.problems
    assert "log.level: must be one of debug, info, warn, error (got 'loud')" in problems
    assert "gpu.interval_seconds: must be a number (got 'fast')" in problems
    assert "kafka.bootstrap_servers[0]: must be HOST:PORT" in problems
    assert "kafka.sasl_mechanism: required for SASL" in problems
    assert "tokens.auth.tokens[0].sha256: must be 64 lower-case hex digits" in problems
    assert "cluster: must be 1-63 of [A-Za-z0-9._-]" in problems


def test_environment_overrides_the_file_and_flags_override_the_environment(tmp_path):
    path = write(tmp_path, "cluster: from-file\ngpu: {source: simulated, interval_seconds: 2}\n")
    environ = {
        "AIFINOPS_CLUSTER": "from-env",
        "AIFINOPS_GPU_INTERVAL_SECONDS": "0.5",
        "AIFINOPS_KAFKA_BOOTSTRAP_SERVERS": "a:9092, b:9092",
        "AIFINOPS_TOKENS_AUTH_ENABLED": "false",
        "AIFINOPS_TOKENS_MAX_BATCH_EVENTS": "50",
        "AIFINOPS_KAFKA_TOPICS_USAGE_PARTITIONS": "20",
        "UNRELATED": "x",
    }
    config = load_config(
        Config, path, environ=environ, overrides={"web.listen_address": "127.0.0.1:1"}
    )
    assert config.cluster == "from-env"
    assert config.gpu.source == "simulated"
    assert config.gpu.interval_seconds == 0.5
    assert config.kafka.bootstrap_servers == ("a:9092", "b:9092")
    assert config.tokens.max_batch_events == 50
    assert config.kafka.topics.usage.partitions == 20
    assert config.kafka.topics.usage.name == "ai-api-costs"
    assert config.web.listen_address == "127.0.0.1:1"
    flagged = load_config(Config, path, environ=environ, overrides={"cluster": "from-flag"})
    assert flagged.cluster == "from-flag"


def test_bad_environment_values_are_reported_like_file_values():
    with pytest.raises(ConfigError) as err:
        load_config(
            Config,
            None,
            environ={
                "AIFINOPS_TOKENS_MAX_BATCH_EVENTS": "many",
                "AIFINOPS_NO_SUCH_THING": "1",
                "AIFINOPS_TOKENS_AUTH_TOKENS": "x",
            },
        )
    assert err.value.problems == [
        "AIFINOPS_NO_SUCH_THING: environment variable matches no setting",
        "AIFINOPS_TOKENS_AUTH_TOKENS: tokens.auth.tokens cannot be set from the environment",
        "tokens.max_batch_events: must be an integer (got 'many')",
    ]


def test_unreadable_and_malformed_files_fail_clearly(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(Config, tmp_path / "missing.yml", environ={})
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Config, write(tmp_path, "a: [b"), environ={})
    with pytest.raises(ConfigError, match="<root>: must be a mapping"):
        load_config(Config, write(tmp_path, "- a\n- b\n"), environ={})


def test_decimals_keep_their_written_value(tmp_path):
    @dataclasses.dataclass(frozen=True)
    class Prices:
        usd: Decimal
        table: dict[str, Decimal] = dataclasses.field(default_factory=dict)

    prices = load_config(Prices, write(tmp_path, "usd: 2.1\ntable: {h100: 0.1}\n"), environ={})
    assert prices.usd == Decimal("2.1")
    assert prices.table["h100"] == Decimal("0.1")
    with pytest.raises(ConfigError, match="usd: must be a decimal number"):
        load_config(Prices, write(tmp_path, "usd: abc\n"), environ={})


def test_describe_lists_every_setting_with_its_default():
    settings = {path: default for path, _, default in describe(Config())}
    assert settings["cluster"] == "default"
    assert settings["kafka.topics.usage.name"] == "ai-api-costs"
    assert settings["tokens.max_body_bytes"] == 1 << 20


def test_a_kubelet_socket_path_too_long_to_bind_is_refused_at_start(tmp_path):
    # Linux binds at most 107 bytes of unix socket path: a longer one used to leave the GPU
    # exporter's kubelet simulator unbound and the daemon never ready, with no word why.
    fits = "/" + "s" * 106
    path = write(tmp_path, f"gpu: {{pod_resources_socket: {fits + 's'!r}}}\n")
    with pytest.raises(ConfigError) as err:
        load_config(Config, path, environ={})
    assert err.value.problems == [
        "gpu.pod_resources_socket: a unix socket path has at most 107 bytes"
    ]
    path.write_text(f"gpu: {{pod_resources_socket: {fits!r}}}\n")
    assert load_config(Config, path, environ={}).gpu.pod_resources_socket == fits
