"""Run a daemon that traces its memory from SIGUSR1 and writes it by source file on SIGUSR2.

`bench/soak.py --tracemalloc` starts the daemons through this, so the split of what their memory
grows by under load (dedupe window, aggregators, Kafka client buffers, spool, HTTP server...) is
measured rather than guessed. Tracing starts on a signal, once the daemon is up, because start-up
under tracemalloc is very slow (the price catalogue is a module of millions of objects): what was
resident then is the baseline, measured apart. Tracing costs CPU and memory of its own (about 60
bytes per live allocation): the resident-memory figures of a traced run are not the daemon's.

    python bench/traced_daemon.py OUT.txt aifinops.cli.bridge [daemon flags...]
"""

from __future__ import annotations

import importlib
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

TOP = 25


def dump(out: Path) -> None:
    """Write the live traced memory by file, largest first, and the total."""
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    stats = snapshot.statistics("filename")
    traced = sum(s.size for s in stats)
    lines = [
        f"allocated since tracing began and still live: {traced / 1e6:.1f} MB "
        f"in {sum(s.count for s in stats):,} blocks"
    ]
    for stat in stats[:TOP]:
        name = stat.traceback[0].filename
        for marker in ("site-packages/", "/work/main/", "/lib/python3"):
            if marker in name:
                name = name.split(marker, 1)[1]
        lines.append(f"{stat.size / 1e6:8.1f} MB {stat.count:>10,} blocks  {name}")
    out.write_text("\n".join(lines) + "\n")


def main() -> None:
    """Install the signal handlers and run the daemon's `main` with the remaining arguments."""
    out, module = Path(sys.argv[1]), sys.argv[2]

    def start(_signum: int, _frame: FrameType | None) -> None:
        tracemalloc.start()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        dump(out)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    sys.argv = [module, *sys.argv[3:]]
    raise SystemExit(importlib.import_module(module).main())


if __name__ == "__main__":
    main()
