"""The `aifinops-bridge` daemon with its per-message work cut down, for `bench/consume.py --ceilings`.

    python bench/variants/cut_bridge.py count|decode [aifinops-bridge flags...]

- count: every polled message is counted as `skipped` and nothing else: the ceiling of the
  bridge's own loop (group membership, commits, lag, checkpointed scrapes) over kafka-python;
- decode: the same after decoding each value as the bridge does (`events.loads`): the least any
  consumer that reads the events must spend on top.

Only `MessageProcessor.process` is replaced, so what is measured is everything else of the real
daemon. Never used outside the benchmark.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from aifinops.bridge.pipeline import Batch, MessageProcessor
from aifinops.cli.bridge import main
from aifinops.exporters.events import loads


def _count(self: MessageProcessor, records: Iterable[Any], replay_until: object = None) -> Batch:
    batch = Batch()
    for record in records:
        batch.skipped[record.topic] = batch.skipped.get(record.topic, 0) + 1
    return batch


def _decode(self: MessageProcessor, records: Iterable[Any], replay_until: object = None) -> Batch:
    batch = Batch()
    for record in records:
        loads(record.value)
        batch.skipped[record.topic] = batch.skipped.get(record.topic, 0) + 1
    return batch


if __name__ == "__main__":
    variant = sys.argv.pop(1)
    MessageProcessor.process = {"count": _count, "decode": _decode}[variant]
    sys.exit(main())
