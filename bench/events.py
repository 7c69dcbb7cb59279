"""CPU per event of decoding and validating usage events, in-process: each reading of the schema.

Times, on the ingest bench's events (JSON CloudEvents of about 370 bytes), per event:

- `loads`: JSON decoding alone (orjson, with the guard that keeps `json`'s results);
- typed decode: msgspec decoding the bytes into `UsageCloudEvent`, its checks included;
- `decode_usage_event(raw)`: what the bridge does with a message value (typed decode, then the
  rules beyond the declaration);
- `loads` + `parse_usage_event`: decoding, then validating the decoded object;
- `parse_usage_event(obj)`: what the HTTP ingest does with each event of a decoded body;
- the same for an event with an extra `data` field, and for an invalid one (the listing);
- the bridge's `MessageProcessor.process` over polled batches of 500 messages (decoding,
  validation and pricing: everything the bridge does with a message but Kafka and counting).

Run it with another checkout's interpreter to compare (readings it lacks are skipped):

    .venv/bin/python bench/events.py [--events 20000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aifinops.exporters.events import EventError, encode, loads, parse_usage_event
from aifinops.exporters.events import usage as usage_module

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import events


def per_event(run: Callable[[], Any], n: int, repeat: int) -> float:
    """Microseconds per event: the best of `repeat` runs over `n` events."""
    run()
    return min(timeit.repeat(run, number=1, repeat=repeat)) / n * 1e6


def bridge_batches(raws: list[bytes]) -> Callable[[], Any]:
    """A run of the bridge's message processing over `raws`, in polled batches of 500."""
    from aifinops.bridge.pipeline import MessageProcessor
    from aifinops.bridge.records import InboundRecord
    from aifinops.exporters.config import LLMConfig, TopicsConfig
    from aifinops.exporters.gpu import GPUAggregator
    from aifinops.exporters.llm import DedupeWindow, UsageIngest

    topics = TopicsConfig()
    processor = MessageProcessor(
        UsageIngest.from_config(LLMConfig(), sources=("kafka",)),
        GPUAggregator(),
        DedupeWindow(),
        topics,
        "bench",
        1 << 20,
    )
    records = [
        InboundRecord(topics.usage.name, i % 10, i, None, raw, []) for i, raw in enumerate(raws)
    ]
    batches = [records[i : i + 500] for i in range(0, len(records), 500)]

    def run() -> None:
        for batch in batches:
            sorted_batch = processor.process(batch)
            assert not sorted_batch.invalid, sorted_batch.invalid[:1]

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    sample = events(args.events)
    raws = [encode(e) for e in sample]
    objs = [loads(r) for r in raws]
    extra = [{**e, "data": {**e["data"], "gateway": "eu-1"}} for e in objs]
    invalid = [{**e, "data": {**e["data"], "input_tokens": -1}} for e in objs]

    def refuse(batch: list[dict]) -> None:
        for e in batch:
            with contextlib.suppress(EventError):
                parse_usage_event(e)

    readings: list[tuple[str, Callable[[], Any]]] = [
        ("loads", lambda: [loads(r) for r in raws]),
    ]
    definition = getattr(usage_module, "USAGE_EVENT", None)
    if definition is not None:
        readings.append(("typed decode (msgspec)", lambda: [definition.decode(r) for r in raws]))
    decode = getattr(usage_module, "decode_usage_event", None)
    if decode is not None:
        readings.append(("decode_usage_event(raw)", lambda: [decode(r) for r in raws]))
    readings += [
        ("loads + parse_usage_event", lambda: [parse_usage_event(loads(r)) for r in raws]),
        ("parse_usage_event(obj)", lambda: [parse_usage_event(e) for e in objs]),
        ("  with an extra data field", lambda: [parse_usage_event(e) for e in extra]),
        ("  invalid (every problem listed)", lambda: refuse(invalid)),
    ]
    readings.append(("bridge: MessageProcessor.process", bridge_batches(raws)))
    size = sum(map(len, raws)) / len(raws)
    print(
        f"{len(raws)} usage events of {size:.0f} bytes on average; us per event, best of "
        f"{args.repeat}:"
    )
    for name, run in readings:
        print(f"  {name:34} {per_event(run, len(raws), args.repeat):6.2f}")


if __name__ == "__main__":
    main()
