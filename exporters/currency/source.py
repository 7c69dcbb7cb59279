"""The exchange rates a process serves: the configured schedule, re-read from `currency.rates_file`
when that file changes, and the gauge `aifinops_fx_rate{currency}` of the rate in force now.

`FxRateSource.fetch()` (run by a `Poller` named `fx_rates`) raises when no rate covers the present
or the file is unreadable, so `aifinops_collector_success{collector="fx_rates"}` turns 0 and the
gauge disappears: a missing or stale rate is an error to alert on, never a silent 1.0.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..checks import FxRate
from ..config import CurrencyConfig
from .rates import RateSchedule, RatesFileError, parse_rates_text

COLLECTOR = "fx_rates"


class FxSnapshot(NamedTuple):
    """The schedule in use and the rate in force when it was fetched."""

    schedule: RateSchedule
    current: FxRate


def load_schedule(config: CurrencyConfig) -> RateSchedule:
    """The schedule of the `currency` section, with `rates_file` (when set) replacing the inline
    rates. Raises `RatesFileError` when the file cannot be read or is invalid."""
    schedule = RateSchedule.from_config(config)
    if not config.rates_file:
        return schedule
    return _with_file_rates(schedule, config.rates_file, _read(config.rates_file))


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RatesFileError(path, [("", f"cannot read ({exc.strerror})")]) from exc


def _with_file_rates(schedule: RateSchedule, path: str, text: str) -> RateSchedule:
    return RateSchedule(schedule.code, parse_rates_text(text, path), schedule.max_age)


class FxRateSource:
    """Reads the rates (the file again only when it was replaced, or its modification time or size
    changed) and the rate in force now; `fetch()` raises `CurrencyError` when there is none."""

    def __init__(
        self, config: CurrencyConfig, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._schedule: RateSchedule | None = (
            None if config.rates_file else RateSchedule.from_config(config)
        )

    def fetch(self) -> FxSnapshot:
        """The schedule and the rate in force now."""
        schedule = self._current_schedule()
        return FxSnapshot(schedule, schedule.rate_at(self._clock()))

    def _current_schedule(self) -> RateSchedule:
        path = self._config.rates_file
        if not path:
            assert self._schedule is not None
            return self._schedule
        try:
            stat = os.stat(path)
        except OSError as exc:
            raise RatesFileError(path, [("", f"cannot read ({exc.strerror})")]) from exc
        # The inode too: a refresh written elsewhere and moved into place is a new file.
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp != self._stamp or self._schedule is None:
                # A file being rewritten may be read half-written: the error stands until the
                # next change, and the previous rates are not used meanwhile.
                self._stamp = stamp
                self._schedule = None
                self._schedule = _with_file_rates(
                    RateSchedule.from_config(self._config), path, _read(path)
                )
            return self._schedule


class FxRateCollector(Collector):
    """`aifinops_fx_rate{currency}` from the latest snapshot; nothing while there is none."""

    def __init__(self, latest: Callable[[], FxSnapshot | None]) -> None:
        self._latest = latest

    def collect(self) -> Iterable[Metric]:
        """One sample: units of the reporting currency per US dollar, in force now."""
        gauge = GaugeMetricFamily(
            "aifinops_fx_rate",
            "Units of the reporting currency per US dollar in force now (currency.rates); absent "
            'while no rate covers the present (aifinops_collector_success{collector="fx_rates"} 0).',
            labels=["currency"],
        )
        snapshot = self._latest()
        if snapshot is not None:
            gauge.add_metric([snapshot.schedule.code], float(snapshot.current.rate))
        yield gauge
