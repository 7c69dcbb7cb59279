"""A stand-in exporter process for producer tests: publishes numbered events through KafkaEventSink.

`python producer_child.py BOOTSTRAP SPOOL_DIR TOPIC FIRST COUNT` publishes events FIRST..FIRST+COUNT-1,
prints `spooled N` each time the spool grows and `delivered` once everything reached Kafka, then
waits for SIGTERM (or is SIGKILLed by the test). COUNT 0 only replays what an earlier run spooled.
"""

from __future__ import annotations

import signal
import sys
import threading
import time

from aifinops.bridge.producer import KafkaEventSink
from aifinops.exporters.config import KafkaConfig, ProducerConfig
from aifinops.exporters.events import USAGE_TYPE, make_event


def main() -> None:
    bootstrap, spool_dir, topic, first, count = sys.argv[1:6]
    sink = KafkaEventSink(
        KafkaConfig(bootstrap_servers=(bootstrap,)),
        ProducerConfig(delivery_timeout_ms=2000, retry_backoff_ms=100, retry_backoff_max_ms=1000),
        spool_dir,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sink.start()
    for n in range(int(first), int(first) + int(count)):
        event = make_event(USAGE_TYPE, "child", {"n": n}, event_id=f"child-{n}")
        sink.publish(topic, f"team-{n % 7}/app", event, {"aifinops-counted-in": b"child"})
    reported = -1
    delivered = False
    while not stop.is_set():
        spooled = sink.spool.count
        if spooled != reported:
            print(f"spooled {spooled}", flush=True)
            reported = spooled
        if not delivered and sink.queued == 0:
            print("delivered", flush=True)
            delivered = True
        time.sleep(0.05)
    sink.stop()


if __name__ == "__main__":
    main()
