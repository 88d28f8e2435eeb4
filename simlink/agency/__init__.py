"""The agency's side: read contact records, normalise, hash into filters and tokens, write.

Runs offline at each agency with the shared secret. Calls go one way, down to the writer:
``encode`` -> ``inputs`` (read) -> ``normalise`` -> ``tokens`` -> ``bloom`` / ``blocking``
(keyed with ``keys``). Nothing here is imported by the linkage unit except the file-format
helpers in ``encode`` (column names, manifest reading), which carry no secret.
"""
