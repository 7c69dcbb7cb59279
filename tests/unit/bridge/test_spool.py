"""The producer's disk spool: order, durability across reopen, torn tails, prepend, limits and locking."""

from __future__ import annotations

import pytest

from aifinops.bridge.records import OutboundMessage
from aifinops.bridge.spool import Spool, SpoolLockedError, decode_message, encode_message


def msg(i: int, topic: str = "t") -> OutboundMessage:
    return OutboundMessage(topic, f"k{i % 3}".encode(), f"value-{i}".encode(), (("h", b"x"),))


def values(entries) -> list[bytes]:
    return [m.value for m, _ in entries]


def opened(path, **kwargs) -> Spool:
    spool = Spool(path, max_bytes=kwargs.pop("max_bytes", 1 << 30), **kwargs)
    spool.open()
    return spool


def test_messages_round_trip_with_and_without_key_and_headers():
    for message in (
        OutboundMessage("ai-api-costs", b"team/app", b'{"a":1}', (("aifinops-counted-in", b"eu"),)),
        OutboundMessage("x", None, b"", ()),
        OutboundMessage("\u00e9t\u00e9", b"", b"v" * 70000, (("a", b""), ("b", b"\x00\xff"))),
    ):
        assert decode_message(encode_message(message)) == message


def test_reads_come_back_in_append_order_across_segments(tmp_path):
    spool = opened(tmp_path, segment_bytes=200)
    assert spool.append(msg(i) for i in range(50)) == 50
    assert spool.count == 50
    assert len(list(tmp_path.glob("*.seg"))) > 3
    got = []
    while entries := spool.read(7):
        got += values(entries)
        spool.ack(entries[-1][1], len(entries))
    assert got == [f"value-{i}".encode() for i in range(50)]
    assert spool.count == 0
    assert spool.empty()
    assert list(tmp_path.glob("*.seg")) == []


def test_unacknowledged_messages_survive_a_reopen_and_acknowledged_ones_do_not(tmp_path):
    spool = opened(tmp_path, segment_bytes=300)
    spool.append(msg(i) for i in range(20))
    entries = spool.read(8)
    spool.ack(entries[-1][1], 8)
    spool.read(5)  # read but never acknowledged: must come back
    spool.close()

    again = opened(tmp_path, segment_bytes=300)
    assert again.count == 12
    assert values(again.read(100)) == [f"value-{i}".encode() for i in range(8, 20)]


def test_rewind_reads_the_same_records_again(tmp_path):
    spool = opened(tmp_path)
    spool.append(msg(i) for i in range(5))
    first = values(spool.read(3))
    spool.rewind()
    assert values(spool.read(3)) == first


def test_a_record_cut_short_by_a_crash_is_dropped_and_the_rest_kept(tmp_path):
    spool = opened(tmp_path)
    spool.append(msg(i) for i in range(3))
    spool.close()
    (segment,) = tmp_path.glob("*.seg")
    whole = segment.read_bytes()
    segment.write_bytes(whole + whole[:10])  # a torn fourth record

    again = opened(tmp_path)
    assert again.count == 3
    assert values(again.read(10)) == [b"value-0", b"value-1", b"value-2"]
    assert segment.read_bytes() == whole
    again.append([msg(3)])
    again.rewind()
    assert values(again.read(10))[-1] == b"value-3"


def test_prepend_puts_a_failed_batch_before_everything_even_after_a_partial_ack(tmp_path):
    spool = opened(tmp_path)
    spool.append(msg(i) for i in range(10, 20))
    entries = spool.read(4)
    spool.ack(entries[-1][1], 4)  # 10..13 are gone
    assert spool.prepend([msg(1), msg(2)]) == 2
    assert spool.count == 8
    spool.close()

    again = opened(tmp_path)
    assert again.count == 8
    assert values(again.read(100)) == [b"value-1", b"value-2"] + [
        f"value-{i}".encode() for i in range(14, 20)
    ]


def test_prepend_then_ack_of_the_prepended_part_keeps_the_partial_head(tmp_path):
    spool = opened(tmp_path)
    spool.append(msg(i) for i in range(10, 15))
    entries = spool.read(2)
    spool.ack(entries[-1][1], 2)
    spool.prepend([msg(1)])
    first = spool.read(1)
    spool.ack(first[-1][1], 1)
    spool.close()
    again = opened(tmp_path)
    assert values(again.read(100)) == [f"value-{i}".encode() for i in range(12, 15)]


def test_append_stops_at_the_size_limit(tmp_path):
    spool = opened(tmp_path, max_bytes=1 << 20)
    big = OutboundMessage("t", None, b"x" * (300 << 10), ())
    assert spool.append([big, big, big, big]) == 3
    assert spool.count == 3


def test_a_second_user_of_the_directory_is_refused(tmp_path):
    opened(tmp_path)
    with pytest.raises(SpoolLockedError, match="in use by another process"):
        opened(tmp_path)


def test_a_large_record_is_read_whole(tmp_path):
    spool = opened(tmp_path)
    big = OutboundMessage("t", b"k", b"y" * (6 << 20), ())
    spool.append([msg(0), big, msg(1)])
    got = []
    while entries := spool.read(1, max_bytes=1 << 20):
        got += values(entries)
        spool.ack(entries[-1][1], 1)
    assert got == [b"value-0", big.value, b"value-1"]
