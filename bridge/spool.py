"""The producer's disk spool: an append-only, checksummed, segmented log of messages waiting for Kafka.

Messages are appended at the tail and read back from the head in the order they were written. A
read does not remove anything: only `ack()` (called once Kafka acknowledged what was read) moves the
persisted head forward, so a process killed at any moment replays from the last acknowledged
message on its next start (at-least-once; consumers drop the duplicates by `(source, id)`).

Layout of the directory:
- `lock`: held with `flock` by the one process using the spool (`dirlock`).
- `<20-digit sequence>.seg`: segments; each record is `<u32 length><u32 crc32>` then the payload.
- `head`: `<segment> <byte offset>` of the first unacknowledged record, replaced atomically.

A record cut short by a crash mid-write (or failing its checksum) ends the segment: the bytes from
there on are dropped with a warning when the spool is opened.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterable
from pathlib import Path

from .dirlock import DirectoryLock
from .records import OutboundMessage

log = logging.getLogger(__name__)

_FRAME = struct.Struct("<II")  # payload length, crc32 of the payload
_FIXED = struct.Struct(
    "<HIIH"
)  # topic length, key length (0xFFFFFFFF = no key), value length, headers
_HEADER = struct.Struct("<HI")  # header name length, header value length
_NO_KEY = 0xFFFFFFFF
_SUFFIX = ".seg"
DEFAULT_SEGMENT_BYTES = 16 << 20
# Segment numbers start high so that `prepend` can always create a segment before the head.
FIRST_SEGMENT = 1 << 40


class SpoolError(Exception):
    """The spool directory cannot be used."""


class SpoolLockedError(SpoolError):
    """Another process holds the spool directory."""


def encode_message(message: OutboundMessage) -> bytes:
    """The payload of one record (without its frame)."""
    topic = message.topic.encode()
    key = message.key
    parts = [
        _FIXED.pack(
            len(topic),
            _NO_KEY if key is None else len(key),
            len(message.value),
            len(message.headers),
        ),
        topic,
    ]
    if key is not None:
        parts.append(key)
    parts.append(message.value)
    for name, value in message.headers:
        raw_name = name.encode()
        parts.append(_HEADER.pack(len(raw_name), len(value)))
        parts.append(raw_name)
        parts.append(value)
    return b"".join(parts)


def decode_message(payload: bytes | memoryview) -> OutboundMessage:
    """Inverse of `encode_message`; raises `ValueError` on a malformed payload."""
    view = memoryview(payload)
    try:
        topic_len, key_len, value_len, n_headers = _FIXED.unpack_from(view, 0)
        pos = _FIXED.size
        topic = bytes(view[pos : pos + topic_len]).decode()
        pos += topic_len
        key: bytes | None = None
        if key_len != _NO_KEY:
            key = bytes(view[pos : pos + key_len])
            pos += key_len
        value = bytes(view[pos : pos + value_len])
        pos += value_len
        headers = []
        for _ in range(n_headers):
            name_len, hvalue_len = _HEADER.unpack_from(view, pos)
            pos += _HEADER.size
            name = bytes(view[pos : pos + name_len]).decode()
            pos += name_len
            headers.append((name, bytes(view[pos : pos + hvalue_len])))
            pos += hvalue_len
    except (struct.error, UnicodeDecodeError) as exc:
        raise ValueError(f"malformed spool record: {exc}") from exc
    if pos != len(view):
        raise ValueError("malformed spool record: trailing bytes")
    return OutboundMessage(topic, key, value, tuple(headers))


def frame(message: OutboundMessage) -> bytes:
    """One record as written to a segment: frame header plus payload."""
    payload = encode_message(message)
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def framed_size(message: OutboundMessage) -> int:
    """The bytes `frame(message)` takes in a segment, computed without building it."""
    key = message.key
    size = (
        _FRAME.size
        + _FIXED.size
        + len(message.topic.encode())
        + (0 if key is None else len(key))
        + len(message.value)
    )
    for name, value in message.headers:
        size += _HEADER.size + len(name.encode()) + len(value)
    return size


class Position(tuple[int, int]):
    """`(segment, byte offset)` inside the spool; ordered like the records."""

    __slots__ = ()

    def __new__(cls, segment: int, offset: int) -> Position:
        return super().__new__(cls, (segment, offset))

    @property
    def segment(self) -> int:
        """The segment's sequence number."""
        return self[0]

    @property
    def offset(self) -> int:
        """Bytes into the segment."""
        return self[1]


class Spool:
    """A directory of segments, used by one process at a time; every method is thread-safe.

    `append` writes (and flushes to the OS, so a SIGKILL loses nothing appended); `read` returns
    records from the read cursor on; `ack` makes the head persistent; `rewind` moves the cursor
    back to the head after a failed send.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    ) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._dirlock = DirectoryLock(self.directory)
        self._segments: list[int] = []
        self._sizes: dict[int, int] = {}
        # Where reading starts in a segment that was partly acknowledged when a prepend put
        # another segment in front of it.
        self._starts: dict[int, int] = {}
        self._head = Position(FIRST_SEGMENT, 0)
        self._cursor = Position(FIRST_SEGMENT, 0)
        self._count = 0
        self._writer: object | None = None
        self._writer_segment = -1
        self._open = False

    # -- lifecycle -------------------------------------------------------------------------------

    def open(self) -> None:
        """Lock the directory, recover its segments and count what waits in them.

        Raises `SpoolLockedError` when another process uses it and `SpoolError` when it cannot
        be created or read.
        """
        with self._lock:
            self._dirlock.acquire_as(
                "spool directory", "process", "producer.spool_dir", SpoolError, SpoolLockedError
            )
            try:
                self._recover()
            except OSError as exc:
                self._release()
                raise SpoolError(f"spool directory {self.directory}: {exc}") from exc
            self._open = True

    def close(self) -> None:
        """Flush, close the files and release the lock; the content stays for the next start."""
        with self._lock:
            self._close_writer()
            self._open = False
            self._release()

    def _release(self) -> None:
        self._dirlock.release()

    def _path(self, segment: int) -> Path:
        return self.directory / f"{segment:020d}{_SUFFIX}"

    def _recover(self) -> None:
        segments = sorted(
            int(p.name[: -len(_SUFFIX)])
            for p in self.directory.iterdir()
            if p.name.endswith(_SUFFIX) and p.name[: -len(_SUFFIX)].isdigit()
        )
        head, starts = self._read_head()
        if head is not None:
            for seg in [s for s in segments if s < head.segment]:
                self._path(seg).unlink(missing_ok=True)
            segments = [s for s in segments if s >= head.segment]
        if not segments:
            start = head.segment + 1 if head is not None else FIRST_SEGMENT
            self._segments = []
            self._sizes = {}
            self._head = self._cursor = Position(start, 0)
            self._count = 0
            return
        if head is None or head.segment not in segments:
            head = Position(segments[0], 0)
        count = 0
        sizes: dict[int, int] = {}
        self._starts = {s: o for s, o in starts.items() if s in segments and s != head.segment}
        for seg in segments:
            start = head.offset if seg == head.segment else self._starts.get(seg, 0)
            valid_end, n = self._scan(seg, start)
            size = self._path(seg).stat().st_size
            if valid_end < size:
                log.warning(
                    "spool %s: dropping %d bytes of a record cut short in segment %d",
                    self.directory,
                    size - valid_end,
                    seg,
                )
                with open(self._path(seg), "r+b") as f:
                    f.truncate(valid_end)
            sizes[seg] = valid_end
            count += n
        self._segments = segments
        self._sizes = sizes
        self._head = self._cursor = head
        self._count = count
        if count:
            log.info("spool %s: %d messages wait from an earlier run", self.directory, count)

    def _scan(self, segment: int, start: int) -> tuple[int, int]:
        """`(end of the last valid record, records from start)` of one segment."""
        n = 0
        pos = start
        with open(self._path(segment), "rb") as f:
            f.seek(start)
            while True:
                head = f.read(_FRAME.size)
                if len(head) < _FRAME.size:
                    return pos, n
                length, crc = _FRAME.unpack(head)
                payload = f.read(length)
                if len(payload) < length or zlib.crc32(payload) != crc:
                    return pos, n
                pos += _FRAME.size + length
                n += 1

    def _read_head(self) -> tuple[Position | None, dict[int, int]]:
        """The head position, then the start offsets of partly acknowledged later segments."""
        try:
            lines = [line.split() for line in (self.directory / "head").read_text().splitlines()]
            head = Position(int(lines[0][0]), int(lines[0][1]))
            return head, {int(seg): int(off) for seg, off in lines[1:]}
        except (OSError, ValueError, IndexError):
            return None, {}

    def _write_head(self) -> None:
        tmp = self.directory / "head.tmp"
        lines = [f"{self._head.segment} {self._head.offset}"]
        lines += [f"{seg} {off}" for seg, off in sorted(self._starts.items())]
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, self.directory / "head")

    # -- state -----------------------------------------------------------------------------------

    @property
    def count(self) -> int:
        """Messages appended and not yet acknowledged."""
        return self._count

    @property
    def size_bytes(self) -> int:
        """Bytes the segments hold, acknowledged records of the head segment included: what
        `max_bytes` limits."""
        with self._lock:
            return sum(self._sizes.values())

    def empty(self) -> bool:
        """True when nothing waits."""
        return self._count == 0

    def exhausted(self) -> bool:
        """True when the read cursor is at the tail (nothing more to read)."""
        with self._lock:
            return self._cursor_at_tail()

    def _cursor_at_tail(self) -> bool:
        if not self._segments:
            return True
        last = self._segments[-1]
        return self._cursor >= Position(last, self._sizes[last])

    # -- writing ---------------------------------------------------------------------------------

    def append(self, messages: Iterable[OutboundMessage]) -> int:
        """Append messages in order; returns how many fit (the rest would exceed `max_bytes`)."""
        with self._lock:
            if not self._open:
                return 0
            written = 0
            total = sum(self._sizes.values())
            chunks: list[bytes] = []
            pending = 0
            for message in messages:
                record = frame(message)
                if total + pending + len(record) > self.max_bytes:
                    break
                if (
                    self._writer is None
                    or self._sizes[self._writer_segment] + pending + len(record)
                    > self.segment_bytes
                ):
                    if chunks:
                        self._write(b"".join(chunks))
                        total += pending
                        chunks, pending = [], 0
                    self._roll()
                chunks.append(record)
                pending += len(record)
                written += 1
            if chunks:
                self._write(b"".join(chunks))
            self._count += written
            return written

    def prepend(self, messages: Iterable[OutboundMessage]) -> int:
        """Put messages before everything the spool holds (they are older: a batch whose send
        failed); returns how many fit. The read cursor goes back to the new head."""
        with self._lock:
            if not self._open:
                return 0
            total = sum(self._sizes.values())
            records: list[bytes] = []
            for message in messages:
                record = frame(message)
                if total + len(record) > self.max_bytes:
                    break
                total += len(record)
                records.append(record)
            if not records:
                return 0
            if self._segments and self._head.offset and self._head.segment == self._segments[0]:
                self._starts[self._head.segment] = self._head.offset
            seg = (self._segments[0] if self._segments else self._head.segment) - 1
            data = b"".join(records)
            with open(self._path(seg), "wb") as f:
                f.write(data)
            self._segments.insert(0, seg)
            self._sizes[seg] = len(data)
            self._count += len(records)
            self._head = self._cursor = Position(seg, 0)
            self._write_head()
            return len(records)

    def _write(self, data: bytes) -> None:
        writer = self._writer
        assert writer is not None
        writer.write(data)  # type: ignore[attr-defined]
        writer.flush()  # type: ignore[attr-defined]
        self._sizes[self._writer_segment] += len(data)

    def _roll(self) -> None:
        """Start a new tail segment (or reopen the current one after a restart, if it has room)."""
        if self._writer is None and self._segments:
            last = self._segments[-1]
            if self._sizes[last] < self.segment_bytes:
                self._writer = open(self._path(last), "ab")  # noqa: SIM115 - kept open
                self._writer_segment = last
                return
        self._close_writer()
        seg = (self._segments[-1] + 1) if self._segments else self._head.segment
        self._writer = open(self._path(seg), "ab")  # noqa: SIM115 - kept open
        self._writer_segment = seg
        self._segments.append(seg)
        self._sizes[seg] = 0

    def _close_writer(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(OSError):
                self._writer.close()  # type: ignore[attr-defined]
            self._writer = None
            self._writer_segment = -1

    # -- reading ---------------------------------------------------------------------------------

    def read(
        self, max_messages: int, max_bytes: int = 4 << 20
    ) -> list[tuple[OutboundMessage, Position]]:
        """Up to `max_messages` records from the cursor on, each with the position after it.

        The cursor moves past them; `ack(position)` makes that durable, `rewind()` undoes it.
        """
        out: list[tuple[OutboundMessage, Position]] = []
        with self._lock:
            budget = max_bytes
            while len(out) < max_messages and budget > 0 and not self._cursor_at_tail():
                seg, offset = self._cursor
                end = self._sizes.get(seg)
                if end is None or offset >= end:
                    later = [s for s in self._segments if s > seg]
                    if not later:
                        break
                    self._cursor = Position(later[0], self._starts.get(later[0], 0))
                    continue
                with open(self._path(seg), "rb") as f:
                    f.seek(offset)
                    data = f.read(min(end - offset, max(budget, 1 << 16)))
                view = memoryview(data)
                pos = 0
                while len(out) < max_messages and pos + _FRAME.size <= len(view):
                    length, crc = _FRAME.unpack_from(view, pos)
                    start = pos + _FRAME.size
                    if start + length > len(view):
                        if not out and pos == 0:
                            # One record larger than the read size: read exactly it.
                            with open(self._path(seg), "rb") as f:
                                f.seek(offset)
                                view = memoryview(f.read(_FRAME.size + length))
                            continue
                        break
                    payload = view[start : start + length]
                    pos = start + length
                    try:
                        if zlib.crc32(payload) != crc:
                            raise ValueError("checksum mismatch")
                        message = decode_message(payload)
                    except ValueError as exc:
                        # Only a disk that changed bytes after they were written gets here.
                        log.error(
                            "spool %s: skipping an unreadable record in segment %d: %s",
                            self.directory,
                            seg,
                            exc,
                        )
                        self._count = max(0, self._count - 1)
                        continue
                    out.append((message, Position(seg, offset + pos)))
                budget -= pos
                self._cursor = Position(seg, offset + pos)
                if pos == 0:
                    break
            return out

    def rewind(self) -> None:
        """Move the read cursor back to the head: the records read since will be read again."""
        with self._lock:
            self._cursor = self._head

    def ack(self, position: Position, count: int) -> None:
        """Everything before `position` reached Kafka (`count` records): persist the new head and
        delete segments no longer needed."""
        with self._lock:
            if position <= self._head:
                return
            self._head = position
            self._count = max(0, self._count - count)
            if self._cursor < position:
                self._cursor = position
            done = [s for s in self._segments if s < position.segment and s != self._writer_segment]
            last = self._segments[-1] if self._segments else position.segment
            if position >= Position(last, self._sizes.get(last, 0)):
                self._count = 0
                # Everything went out: start over with an empty directory.
                done = list(self._segments)
                self._close_writer()
                next_segment = (self._segments[-1] + 1) if self._segments else position.segment
                self._head = self._cursor = Position(next_segment, 0)
            for seg in done:
                self._path(seg).unlink(missing_ok=True)
                self._segments.remove(seg)
                self._sizes.pop(seg, None)
                self._starts.pop(seg, None)
            if (
                position.segment in self._starts
                and position.offset >= self._starts[position.segment]
            ):
                del self._starts[position.segment]
            self._write_head()
