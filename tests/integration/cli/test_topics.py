"""`aifinops topics create|check` against a real broker."""

from __future__ import annotations

import os

import pytest

from aifinops.bridge.transport import AdminClient
from aifinops.cli.aifinops import main
from aifinops.exporters.config import KafkaConfig
from support.kafka_helpers import create_topics

pytestmark = pytest.mark.integration


def config_file(tmp_path, names: dict[str, str]) -> str:
    path = tmp_path / "aifinops.yml"
    path.write_text(
        "kafka:\n  topics:\n"
        + "".join(f"    {key}: {{name: {name}}}\n" for key, name in names.items())
    )
    return str(path)


@pytest.fixture
def names(topic_name):
    return {
        key: topic_name(key.replace("_", "-"))
        for key in ("usage", "gpu", "anomalies", "usage_dlq", "gpu_dlq")
    }


def test_create_makes_every_topic_with_its_partitions_and_is_idempotent(
    kafka_session_logs, tmp_path, names, capsys
):
    bootstrap = kafka_session_logs.bootstrap
    args = [
        "topics",
        "create",
        "--config.file",
        config_file(tmp_path, names),
        "--kafka.bootstrap-servers",
        bootstrap,
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert sorted(
        line.split()[1] for line in out.splitlines() if line.startswith("created")
    ) == sorted(names.values())

    admin = AdminClient(KafkaConfig(bootstrap_servers=(bootstrap,)))
    try:
        found = admin.describe(list(names.values()))
    finally:
        admin.close()
    assert {key: found[name].partitions for key, name in names.items()} == {
        "usage": 10,
        "gpu": 10,
        "anomalies": 3,
        "usage_dlq": 1,
        "gpu_dlq": 1,
    }

    assert main(args) == 0  # a second run changes nothing
    assert "created" not in capsys.readouterr().out
    assert main(["topics", "check", *args[2:]]) == 0


def test_check_reports_a_topic_with_too_few_partitions_and_a_missing_one(
    kafka_session_logs, tmp_path, names, capsys
):
    bootstrap = kafka_session_logs.bootstrap
    create_topics(
        bootstrap,
        {names["usage"]: 4, names["gpu"]: 10, names["anomalies"]: 3, names["usage_dlq"]: 1},
    )
    status = main(
        [
            "topics",
            "check",
            "--config.file",
            config_file(tmp_path, names),
            "--kafka.bootstrap-servers",
            bootstrap,
        ]
    )
    captured = capsys.readouterr()
    assert status == 1
    differs = [line for line in captured.out.splitlines() if line.startswith("differs")]
    assert differs == [
        f"differs {names['usage']}: partitions is 4, config says 10",
        f"differs {names['gpu_dlq']}: missing (config: 1 partition, replication 1, retention 604800000 ms)",
    ]
    assert "2 differences" in captured.err
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        # Tansu returns no topic configs: retention is noted, not reported as a difference.
        assert f"note {names['gpu']}: retention_ms not readable from this broker" in captured.out


def test_an_unreachable_broker_is_a_clear_error(tmp_path, capsys):
    from aifinops.cli.demo.stack import free_port

    status = main(
        [
            "topics",
            "check",
            "--kafka.bootstrap-servers",
            f"127.0.0.1:{free_port()}",
            "--timeout",
            "1",
        ]
    )
    assert status == 1
    assert "cannot reach Kafka" in capsys.readouterr().err
