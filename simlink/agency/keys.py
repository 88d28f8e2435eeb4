"""The shared secret and the keys derived from it.

The agencies share one random 256-bit secret; the linkage unit never holds it. Every hash
simlink computes is keyed: one key per field and one for blocking tokens, each derived with
HKDF-SHA-256 from the secret, the purpose and the schema fingerprint (so two schemas never
share bit positions). The secret itself never enters any output; encoded files carry only a
*key check value* — an HMAC of a constant — that lets the linkage unit see whether two
agencies used the same secret without learning anything about it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.hmac import HMAC
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from simlink.errors import KeyFileError, OutputExistsError

SECRET_BYTES = 32
_CHECK_CONSTANT = b"simlink key check value v1"


def generate_key_file(path: str | Path) -> Path:
    """Write a new random secret (hex) with mode 0600; never overwrite an existing file."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise OutputExistsError("key file already exists; refusing to overwrite a secret", path=path) from None
    except OSError as exc:
        raise KeyFileError(f"cannot create key file ({exc.strerror})", path=path) from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_hex(SECRET_BYTES) + "\n")
    os.chmod(path, 0o600)
    return path


def read_key_file(path: str | Path) -> bytes:
    """Read a secret written by :func:`generate_key_file`; errors never echo its content."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError("key file not found", path=path) from None
    except OSError as exc:
        raise KeyFileError(f"cannot read key file ({exc.strerror})", path=path) from None
    try:
        text = raw.decode("ascii").strip()
        secret = bytes.fromhex(text)
    except (UnicodeDecodeError, ValueError):
        raise KeyFileError("key file is not a hexadecimal key (make one with 'simlink keygen')", path=path) from None
    if len(secret) != SECRET_BYTES:
        raise KeyFileError(
            f"key has the wrong length: {len(secret) * 8} bits, expected {SECRET_BYTES * 8}", path=path
        )
    _check_private(path)
    return secret


def _check_private(path: Path) -> None:
    """Refuse a key other users can read or change, as ssh refuses such a private key.

    Anyone who can read the secret can rebuild every agency's filters and attack them
    offline; refusing (not warning) makes the owner fix it before the secret is used.
    """
    if os.name != "posix":
        return
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise KeyFileError(f"key file is accessible by other users (mode {mode:04o}); "
                           f"make it private with: chmod 600 '{path}'", path=path)


def derive_key(secret: bytes, purpose: str, context: str = "") -> bytes:
    """A 256-bit key for one purpose (a field, blocking, hardening), bound to a context."""
    info = f"simlink/v1/{purpose}/{context}".encode("utf-8")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def key_check_value(secret: bytes) -> str:
    """Public fingerprint of the secret: equal iff the secrets are equal (with certainty for practical purposes)."""
    mac = HMAC(derive_key(secret, "key-check"), hashes.SHA256())
    mac.update(_CHECK_CONSTANT)
    return mac.finalize()[:8].hex()


class KeyedHash:
    """HMAC-SHA-256 under one key, re-using the keyed state for each message (fast)."""

    def __init__(self, key: bytes) -> None:
        self._base = HMAC(key, hashes.SHA256())

    def digest(self, message: bytes) -> bytes:
        mac = self._base.copy()
        mac.update(message)
        return mac.finalize()
