"""simlink: privacy-preserving record linkage of crisis contacts across agencies.

Pipeline: schema -> normalise -> encode (at each agency, with a shared secret) ->
link (at a linkage unit without the secret) -> counts (with disclosure control).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
