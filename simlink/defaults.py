"""Defaults shared by the library and the CLI, in a module that imports nothing.

The ``simlink`` command shows these in its help before any heavy library is loaded, so
they live here rather than in the packages that use them (which import DuckDB, NumPy ...).
"""

from __future__ import annotations

# Match probability at or above which two encodings are taken to be the same person.
DEFAULT_THRESHOLD = 0.95
# Error levels of the synthetic data (``simlink synth --errors``, ``simlink demo --errors``).
ERROR_LEVELS = ("low", "medium", "high")
# Total differential-privacy epsilon a linkage database may spend over all its DP releases
# (simlink counts --dp-budget changes it; docs/counts.md).
DEFAULT_TOTAL_EPSILON = 2.0
# Most distinct encodings one blocking token may hold before the linkage unit takes its block
# apart (simlink/link/block_caps.py; simlink link --block-cap).
DEFAULT_BLOCK_CAP = 24
