"""CPU time of a process as the kernel accounts it (all its threads)."""

from __future__ import annotations

import os
import time

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds used so far by ``pid`` (default: this process).

    This process's own comes from CLOCK_PROCESS_CPUTIME_ID (nanoseconds);
    another's from /proc/<pid>/stat (clock ticks, 10 ms), so measure other
    processes over seconds.
    """
    if pid is None:
        return time.process_time()
    try:
        with open(f"/proc/{pid or 'self'}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        # After the command name: state is field 3, utime 14 and stime 15.
        return (int(fields[11]) + int(fields[12])) / _TICK
    except OSError:
        import psutil  # off Linux

        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)
