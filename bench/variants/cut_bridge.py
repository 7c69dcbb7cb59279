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
from collections.abc import Callable, Iterable
from typing import Any

from aifinops.bridge.pipeline import Batch, MessageProcessor
from aifinops.cli.bridge import main
from aifinops.exporters.events import loads


def cut_process(decode: bool) -> Callable[..., Batch]:
    """A `MessageProcessor.process` that counts every record as skipped (after decoding its
    value when `decode`)."""

    def process(
        self: MessageProcessor, records: Iterable[Any], replay_until: object = None
    ) -> Batch:
        batch = Batch()
        skipped = batch.skipped
        for record in records:
            if decode:
                loads(record.value)
            skipped[record.topic] = skipped.get(record.topic, 0) + 1
        return batch

    return process


if __name__ == "__main__":
    variant = sys.argv.pop(1)
    MessageProcessor.process = cut_process(decode={"count": False, "decode": True}[variant])
    sys.exit(main())
