"""The key of the public API (/api/v1): 64 hex characters in `<data dir>/api-key.json`, made on
first start, replaced by `python -m server api-key regenerate` or `POST /api/v1/auth/regenerate`.

A running manager notices a key regenerated from the command line: it re-reads the file when
the file's stat changes (one stat per /api/v1 request).
"""
from __future__ import annotations

import hmac
import json
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

FILE_NAME = "api-key.json"
KEY_PATTERN = re.compile(r"[0-9a-f]{64}")


class KeyFileError(Exception):
    """The key file exists but cannot be used; the message says what to do."""


@dataclass
class ApiKey:
    path: Path
    _key: str = field(default="", repr=False)
    _stamp: tuple[int, int, int] | None = field(default=None, repr=False)

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> ApiKey:
        """The data dir's key, created (readable by its owner only) when there is none yet."""
        key = cls(Path(data_dir) / FILE_NAME)
        if not key.path.exists():
            key.regenerate()
        key.current()
        return key

    def current(self) -> str:
        stat = self.path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if stamp != self._stamp:
            self._key, self._stamp = _read(self.path), stamp
        return self._key

    def matches(self, presented: str) -> bool:
        """Constant-time comparison, so the time taken says nothing about the key."""
        return hmac.compare_digest(presented.encode(), self.current().encode())

    def regenerate(self) -> str:
        """A new random key, written whole (temp file, fsync, rename); the old one stops working."""
        key = secrets.token_hex(32)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"key": key, "created_at": int(time.time())}, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, self.path)
        self._stamp = None
        return key


def bearer_token(header: str | None) -> str | None:
    """`Bearer <token>` → token (the scheme is case-insensitive); anything else → None."""
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _read(path: Path) -> str:
    try:
        key = json.loads(path.read_text(encoding="utf-8")).get("key")
    except (ValueError, AttributeError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"{path} is not a valid API key file ({exc}); replace it with "
                           "`python -m server api-key regenerate`") from exc
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise KeyFileError(f"{path} holds no 64-hex-digit key; replace it with "
                           "`python -m server api-key regenerate`")
    return key
