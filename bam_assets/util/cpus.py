"""How many CPUs this process may use."""

import os


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask, as ``taskset`` or a container's cpuset
    sets it (``os.cpu_count`` and DuckDB's own default see every CPU of the host)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
