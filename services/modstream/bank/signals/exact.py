"""Exact hashes of an image's bytes (SHA-256, MD5): one type, parametrised by hashlib's name.

A match is the same bytes, so distance 0; they are checked before inference, and a
byte-identical re-upload of a banked image costs no model call.
"""

import hashlib

from modstream.bank.signals.base import ExactIndex, SignalIndex, SignalType, hex_digest


class ExactHash(SignalType):
    """``hashlib.new(name)`` of the bytes, as ``digits`` lowercase hex digits."""

    def __init__(self, name: str, digits: int, *, preference: int = 0) -> None:
        self.name = self.field = name
        self.digits = digits
        self.preference = preference

    def validate(self, value: str) -> str:
        return hex_digest(self.name, value, self.digits)

    def hash(self, data: bytes) -> str:
        return hashlib.new(self.name, data, usedforsecurity=False).hexdigest()

    def distance(self, first: str, second: str) -> int:
        return 0 if first == second else 1

    def index(self) -> SignalIndex:
        return ExactIndex(bytes.fromhex)

    def examples(self) -> list[str]:
        return [self.hash(b"")]
