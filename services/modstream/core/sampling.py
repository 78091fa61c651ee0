"""Stable sampling: whether a key falls in a share of all keys, the same answer on every run
and in every process, so a replayed or retried item is sampled exactly when it was before."""

import hashlib


def in_sample(key: str, rate: float) -> bool:
    """Whether ``key`` is in the ``rate`` share of all keys (0: none, 1: all)."""
    if rate <= 0.0:
        return False
    point = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
    return point < rate
