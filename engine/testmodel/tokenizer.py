"""Train a byte-level BPE tokenizer (GPT-2 style) on the built-in corpus; it does not encode text.

The result, a ``ByteBPE``, is what both writers export: GGUF token list + merges for llama.cpp and a
``tokenizer.json`` for Hugging Face ``tokenizers``. Training is deterministic and independent of the
weight seed, so every test model of one vocabulary size shares one tokenizer.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import re
from collections import defaultdict
from typing import Any, Literal

import msgspec

from engine.testmodel.chat_template import CHAT_TEMPLATE
from engine.testmodel.corpus import corpus_counts

__all__ = [
    "CONTROL",
    "EOS_TOKEN",
    "NORMAL",
    "PAD_TOKEN",
    "SPECIAL_TOKENS",
    "USER_DEFINED",
    "VOCAB_SIZES",
    "ByteBPE",
    "build_tokenizer",
    "bytes_to_unicode",
    "pretokenize",
]

# llama.cpp token types (gguf.TokenType): NORMAL text, CONTROL (hidden unless asked), USER_DEFINED
# (always matched as one piece and always printed as text).
NORMAL = 1
CONTROL = 3
USER_DEFINED = 4

# Appended after the learned vocabulary, in this order. ChatML markers are control tokens; the
# Hermes/Qwen tool-call tags are plain text tokens, as in Qwen2.5.
SPECIAL_TOKENS: tuple[tuple[str, int], ...] = (
    ("<|endoftext|>", CONTROL),
    ("<|im_start|>", CONTROL),
    ("<|im_end|>", CONTROL),
    ("<tool_call>", USER_DEFINED),
    ("</tool_call>", USER_DEFINED),
    ("<tool_response>", USER_DEFINED),
    ("</tool_response>", USER_DEFINED),
)
EOS_TOKEN = "<|im_end|>"
PAD_TOKEN = "<|endoftext|>"

VOCAB_SIZES: dict[str, int] = {"small": 1536, "32k": 32000}
_MADE_UP_WORDS: dict[str, int] = {"small": 2000, "32k": 40000}

# GPT-2's pre-tokenizer pattern with \p{L} written as [^\W\d_] and \p{N} as \d, which is the same on
# the ASCII corpus (Python's re has no \p classes). Used for training only.
_GPT2_SPLIT = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")


class ByteBPE(msgspec.Struct, kw_only=True, frozen=True):
    """A trained tokenizer.

    ``tokens[i]`` is token i in GPT-2 byte-to-unicode text (special tokens verbatim),
    ``token_types[i]`` its llama.cpp type, ``merges`` the ranked merges as "left right".
    """

    tokens: tuple[str, ...]
    token_types: tuple[int, ...]
    merges: tuple[str, ...]
    chat_template: str

    def token_id(self, text: str) -> int:
        """Return the id of a token given in its stored form; KeyError if absent."""
        return self.tokens.index(text)

    @property
    def eos_id(self) -> int:
        return self.token_id(EOS_TOKEN)

    @property
    def pad_id(self) -> int:
        return self.token_id(PAD_TOKEN)

    def hf_tokenizer_json(self) -> dict[str, Any]:
        """The same tokenizer in Hugging Face ``tokenizers`` JSON form (BPE, byte-level)."""
        n_learned = len(self.tokens) - len(SPECIAL_TOKENS)
        byte_level = {"add_prefix_space": False, "trim_offsets": True, "use_regex": True}
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": [
                {
                    "id": n_learned + i,
                    "content": text,
                    "single_word": False,
                    "lstrip": False,
                    "rstrip": False,
                    "normalized": False,
                    "special": kind == CONTROL,
                }
                for i, (text, kind) in enumerate(SPECIAL_TOKENS)
            ],
            "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", **byte_level},
            "post_processor": {"type": "ByteLevel", **byte_level, "trim_offsets": False},
            "decoder": {"type": "ByteLevel", **byte_level},
            "model": {
                "type": "BPE",
                "dropout": None,
                "unk_token": None,
                "continuing_subword_prefix": None,
                "end_of_word_suffix": None,
                "fuse_unk": False,
                "byte_fallback": False,
                "ignore_merges": False,
                "vocab": {tok: i for i, tok in enumerate(self.tokens[:n_learned])},
                "merges": list(self.merges),
            },
        }


@functools.cache
def bytes_to_unicode() -> tuple[str, ...]:
    """GPT-2's table: byte value -> a printable character standing for it in token text."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    table: dict[int, str] = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return tuple(table[b] for b in range(256))


def pretokenize(text: str) -> list[str]:
    """Split text as GPT-2's pre-tokenizer does (exact for ASCII text)."""
    return _GPT2_SPLIT.findall(text)


def _train_merges(counts: dict[str, int], n_tokens: int) -> tuple[list[bytes], list[tuple[int, int]]]:
    """Learn merges until the vocabulary holds ``n_tokens`` tokens.

    Classic BPE with incremental pair counts and a lazy max-heap; ties go to the smaller pair of
    ids, so the result is fully determined by the corpus. A merge whose bytes already exist as a
    token reuses that token (two merge paths can spell the same bytes).
    """
    vocab: list[bytes] = [bytes([b]) for b in range(256)]
    index: dict[bytes, int] = {tok: i for i, tok in enumerate(vocab)}
    pieces = sorted(counts)
    words = [list(piece.encode("utf-8")) for piece in pieces]
    weights = [counts[piece] for piece in pieces]
    pair_counts: dict[tuple[int, int], int] = defaultdict(int)
    where: dict[tuple[int, int], set[int]] = defaultdict(set)
    for i, word in enumerate(words):
        for pair in itertools.pairwise(word):
            pair_counts[pair] += weights[i]
            where[pair].add(i)
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)
    merges: list[tuple[int, int]] = []
    while len(vocab) < n_tokens:
        if not heap:
            raise ValueError(f"corpus too small: only {len(vocab)} tokens learned of {n_tokens}")
        neg, pair = heapq.heappop(heap)
        actual = pair_counts.get(pair, 0)
        if actual != -neg:
            # Entries only over-estimate (counts that fall are re-queued lazily, here).
            if 0 < actual < -neg:
                heapq.heappush(heap, (-actual, pair))
            continue
        left, right = pair
        merged = vocab[left] + vocab[right]
        new_id = index.get(merged)
        if new_id is None:
            new_id = len(vocab)
            vocab.append(merged)
            index[merged] = new_id
        merges.append(pair)
        grown: set[tuple[int, int]] = set()
        for i in where.pop(pair):
            word = words[i]
            out: list[int] = []
            j, n = 0, len(word)
            while j < n:
                if j + 1 < n and word[j] == left and word[j + 1] == right:
                    out.append(new_id)
                    j += 2
                else:
                    out.append(word[j])
                    j += 1
            if len(out) == n:
                continue  # stale index entry: the pair left this word earlier
            weight = weights[i]
            for p in itertools.pairwise(word):
                pair_counts[p] -= weight
            for p in itertools.pairwise(out):
                pair_counts[p] += weight
                if new_id in p:
                    where[p].add(i)
                    grown.add(p)
            words[i] = out
        del pair_counts[pair]
        for p in sorted(grown):
            heapq.heappush(heap, (-pair_counts[p], p))
    return vocab, merges


@functools.cache
def build_tokenizer(vocab: Literal["small", "32k"] = "small") -> ByteBPE:
    """Train (once per process) the tokenizer for a vocabulary size: "small" (1,536) or "32k"."""
    if vocab not in VOCAB_SIZES:
        raise ValueError(f"unknown vocab {vocab!r}: expected one of {', '.join(VOCAB_SIZES)}")
    n_learned = VOCAB_SIZES[vocab] - len(SPECIAL_TOKENS)
    learned, merges = _train_merges(corpus_counts(pretokenize, _MADE_UP_WORDS[vocab]), n_learned)
    table = bytes_to_unicode()

    def show(tok: bytes) -> str:
        return "".join(table[b] for b in tok)

    tokens = [show(tok) for tok in learned]
    clash = {text for text, _ in SPECIAL_TOKENS} & set(tokens)
    if clash:
        raise ValueError(f"learned token collides with a special token: {sorted(clash)[0]}")
    return ByteBPE(
        tokens=(*tokens, *(text for text, _ in SPECIAL_TOKENS)),
        token_types=(*([NORMAL] * len(tokens)), *(kind for _, kind in SPECIAL_TOKENS)),
        merges=tuple(f"{show(learned[a])} {show(learned[b])}" for a, b in merges),
        chat_template=CHAT_TEMPLATE,
    )
