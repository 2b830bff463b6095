"""Secrets at rest: what the ledger must keep but never show (webhook signing secrets)
is stored encrypted with Fernet (AES-128-CBC with an HMAC-SHA256 tag) under a key from
the settings (`METERLINE_SECRET_KEY`) or, in the embedded default, a key file in the
data dir created on first use (mode 0600)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        self._key = key

    def derive_key(self, purpose: str) -> bytes:
        """A 32-byte key for one purpose (signing portal tokens, …), derived from this
        box's key: one secret to keep, and a key of one purpose never verifies another's."""
        return hmac.new(self._key, b"meterline:" + purpose.encode(), hashlib.sha256).digest()

    @classmethod
    def from_passphrase(cls, passphrase: str) -> SecretBox:
        """A key from any string (its SHA-256 as the Fernet key)."""
        return cls(base64.urlsafe_b64encode(hashlib.sha256(passphrase.encode()).digest()))

    @classmethod
    def from_key_file(cls, path: Path) -> SecretBox:
        """The key kept in `path`, written there (readable by its owner only) if new."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(Fernet.generate_key())
        return cls(path.read_bytes().strip())

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as error:
            raise ValueError(
                "a stored secret cannot be decrypted: METERLINE_SECRET_KEY differs from "
                "the key it was sealed with"
            ) from error
