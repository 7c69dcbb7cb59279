"""Tripwires: hard spend limits checked on every counted usage event, sent straight to Alertmanager.

- `Tripwires(config.tripwires, cluster)`: `observe(events)` checks counted events in O(1) each and
  returns the onsets; `due()` the refreshes and resolutions; bounded state (docs/tripwires.md).
- `AlertmanagerNotifier.from_config(config.tripwires, cluster, publish)`: the hook for the event
  path (`observe`), the sender thread (`start`, `stop`) and `collector()`.
- `MinuteWindow`: the exact last-minute sum of per-second integer buckets.
"""

from .checker import ALERTNAME, TRIPWIRES, Alert, Tripwires, cost_units, fingerprint, usd_units
from .notifier import AlertmanagerNotifier, TripwireCollector
from .window import MinuteWindow

__all__ = [
    "ALERTNAME",
    "TRIPWIRES",
    "Alert",
    "AlertmanagerNotifier",
    "MinuteWindow",
    "TripwireCollector",
    "Tripwires",
    "cost_units",
    "fingerprint",
    "usd_units",
]
