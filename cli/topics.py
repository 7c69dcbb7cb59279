"""`aifinops topics create|check`: create the configured Kafka topics, or list how the cluster differs."""

from __future__ import annotations

import argparse
import sys

from aifinops.bridge.topics import (
    TopicCreationError,
    TopicReport,
    check,
    describe_topic,
    ensure,
    plan,
)
from aifinops.bridge.transport import AdminClient, TransportError
from aifinops.exporters.config import Config
from aifinops.exporters.runtime.config import ConfigError, load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`aifinops topics create|check [--config.file PATH] [--kafka.bootstrap-servers HOST:PORT]`."""
    parser.add_argument(
        "action",
        choices=["create", "check"],
        help="create: make the missing topics (idempotent); check: list every difference, "
        "exit 1 when there is one",
    )
    parser.add_argument("--config.file", dest="config_file", metavar="PATH")
    parser.add_argument(
        "--kafka.bootstrap-servers", dest="kafka_bootstrap_servers", metavar="HOST:PORT[,...]"
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="per request (default 10)"
    )


def _print(report: TopicReport, config: Config) -> None:
    for name in report.created:
        print(f"created {name}")
    for topic in plan(config.kafka):
        if not any(d.topic == topic.name for d in report.differences):
            print(f"ok {topic.name}: {describe_topic(topic)}")
    for note in report.notes:
        print(f"note {note}")
    for difference in report.differences:
        print(f"differs {difference}")


def run(args: argparse.Namespace) -> int:
    """0 when the cluster matches the config, 1 when it differs or Kafka fails, 2 on bad config."""
    overrides = {}
    if args.kafka_bootstrap_servers:
        overrides["kafka.bootstrap_servers"] = args.kafka_bootstrap_servers
    try:
        config = load_config(Config, args.config_file, overrides=overrides)
    except ConfigError as exc:
        print(f"aifinops topics: {exc}", file=sys.stderr)
        return 2
    if not config.kafka.bootstrap_servers:
        print(
            "aifinops topics: no Kafka brokers: set --kafka.bootstrap-servers or kafka.bootstrap_servers",
            file=sys.stderr,
        )
        return 2
    try:
        admin = AdminClient(config.kafka, timeout_ms=int(args.timeout * 1000))
    except TransportError as exc:
        print(f"aifinops topics: cannot reach Kafka: {exc}", file=sys.stderr)
        return 1
    try:
        wanted = plan(config.kafka)
        report = ensure(admin, wanted) if args.action == "create" else check(admin, wanted)
    except (TransportError, TopicCreationError) as exc:
        print(f"aifinops topics {args.action}: {exc}", file=sys.stderr)
        return 1
    finally:
        admin.close()
    _print(report, config)
    if not report.ok:
        print(
            f"aifinops topics {args.action}: {len(report.differences)} difference"
            f"{'s' if len(report.differences) != 1 else ''} from the config",
            file=sys.stderr,
        )
        return 1
    return 0
