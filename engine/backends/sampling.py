"""Seeded token sampling from a logits row, optionally under an llguidance token bitmask.

Plain numpy: temperature, top-p and greedy choice, one ``numpy.random.Generator`` per request so
the same seed gives the same tokens. It does not touch any inference library.
"""

from __future__ import annotations

import hashlib

import numpy as np
from numpy.typing import NDArray

__all__ = ["allowed_mask", "request_rng", "sample_token"]


def request_rng(seed: int | None, request_id: str, backend_seed: int) -> np.random.Generator:
    """The generator for one request: its own seed, or one derived from the id and backend seed."""
    if seed is None:
        digest = hashlib.sha256(f"{backend_seed}:{request_id}".encode()).digest()
        seed = int.from_bytes(digest[:8], "little")
    return np.random.default_rng(seed)


def allowed_mask(bitmask_row: NDArray[np.int32], n_vocab: int) -> NDArray[np.bool_]:
    """Which token ids are allowed by one row of an llguidance bitmask (32 tokens per int32)."""
    bits = np.unpackbits(bitmask_row.view(np.uint8), bitorder="little")[:n_vocab]
    return bits.view(np.bool_)


def sample_token(
    logits: NDArray[np.float32],
    rng: np.random.Generator,
    *,
    temperature: float,
    top_p: float,
    allowed: NDArray[np.bool_] | None = None,
) -> int:
    """Draw one token id from ``logits``, never one that ``allowed`` (a vocabulary mask) forbids."""
    scores = logits if allowed is None else np.where(allowed, logits, np.float32(-np.inf))
    best = int(np.argmax(scores))
    top = scores[best]
    if not np.isfinite(top):
        raise ValueError("the constraint allows no token")
    if temperature <= 0.0:
        return best
    probs = np.exp((scores - top) * np.float32(1.0 / temperature), dtype=np.float32)
    if top_p < 1.0:
        order = np.argsort(-probs, kind="stable")
        cum = np.cumsum(probs[order], dtype=np.float64)
        keep = int(np.searchsorted(cum, top_p * cum[-1])) + 1
        cut = np.zeros_like(probs)
        cut[order[:keep]] = probs[order[:keep]]
        probs = cut
    token = _draw(probs, rng)
    return token if probs[token] > 0.0 else best


_BLOCK = 256


def _draw(probs: NDArray[np.float32], rng: np.random.Generator) -> int:
    """Inverse-CDF draw in two levels (block sums, then one block), cheap on large vocabularies."""
    n = probs.size
    padded = probs if n % _BLOCK == 0 else np.concatenate([probs, np.zeros(-n % _BLOCK, probs.dtype)])
    blocks = np.cumsum(padded.reshape(-1, _BLOCK).sum(axis=1, dtype=np.float64))
    u = rng.random() * blocks[-1]
    b = min(int(np.searchsorted(blocks, u, side="right")), blocks.size - 1)
    inner = padded[b * _BLOCK : (b + 1) * _BLOCK]
    left = u - (blocks[b - 1] if b else 0.0)
    i = min(int(np.searchsorted(np.cumsum(inner, dtype=np.float64), left, side="right")), _BLOCK - 1)
    if inner[i] == 0.0:  # rounding put us on an excluded token: take the nearest allowed one
        nonzero = np.flatnonzero(inner)
        if nonzero.size:
            j = min(int(np.searchsorted(nonzero, i)), nonzero.size - 1)
            i = int(nonzero[j])
    return min(b * _BLOCK + i, n - 1)
