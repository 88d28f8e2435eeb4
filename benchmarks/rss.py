"""Peak resident memory of this process, for the benchmarks' child processes.

``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is not the child's own peak on Linux: the
kernel carries the parent's high-water mark across fork/vfork and exec, so a child started
by a 800 MB parent reports >= 800 MB however little it uses. ``VmHWM`` in /proc/self/status
is the high-water mark of this process's own address space since exec. Standard library only,
so importing it costs the measured process nothing.
"""

from __future__ import annotations

import resource


def peak_rss_mb() -> float:
    """This process's peak RSS in MB (VmHWM; ru_maxrss where /proc is missing)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
