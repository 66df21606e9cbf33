"""``hashed_features`` dot a model's weights for a whole batch of texts, fast.

The same numbers as ``monitor.scoring.features.hashed_features`` (the weights were trained on
those), about six times faster: it caches each word's n-gram columns, derives word n-gram
hashes from the tokens' crc32 instead of hashing joined strings, and does the counting and the
dot product per batch in numpy.
"""

from __future__ import annotations

import itertools
import json
import threading
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from monitor.scoring.features import DEFAULT_TOKEN_PATTERN, MAX_CHARS, hashed_features, token_re

_CACHE_WORDS = 2**16  # words kept (~370 bytes each: ~24 MB full); emptied when full
_CACHE_WORD_CHARS = 40  # longer words are not cached (rare, and their entries are large)
_CHUNK_ROWS = 1024  # texts featurized together at most (keeps the sort keys small)
_SHIFT_BYTES = 64  # crc32 shift tables cover tokens up to this many bytes (with the space)


@cache
def _crc_shift_tables() -> np.ndarray:
    """``[length, byte position, byte value]``: what crc32 register byte ``value`` at
    ``position`` becomes after ``length`` more message bytes. With it,
    ``crc32(a + b) == shift(crc32(a), len(b)) ^ crc32(b)`` (zlib's crc32_combine) for a
    batch of n-grams at once, from each token's own crc32."""
    basis = np.array([[zlib.crc32(bytes(length), (1 << bit) ^ 0xFFFFFFFF) ^ 0xFFFFFFFF
                       for bit in range(32)] for length in range(_SHIFT_BYTES + 1)],
                     dtype=np.uint32).reshape(_SHIFT_BYTES + 1, 4, 8)
    bits = (np.arange(256, dtype=np.uint32)[:, None] >> np.arange(8, dtype=np.uint32)) & 1
    # the shift is linear: a byte's image is the xor of its set bits' images
    tables = np.bitwise_xor.reduce(bits[None, None, :, :] * basis[:, :, None, :], axis=3)
    return np.ascontiguousarray(tables, dtype=np.uint32).reshape(-1)


def _crc_shift(crc: np.ndarray, length: np.ndarray) -> np.ndarray:
    """``crc`` (uint32) as if ``length`` zero bytes followed, raw (no pre/post inversion)."""
    tables = _crc_shift_tables()
    short = length <= _SHIFT_BYTES
    at = np.where(short, length, 0).astype(np.int64) << 10
    out = (tables[at | (crc & 0xFF)] ^ tables[at | 256 | ((crc >> 8) & 0xFF)]
           ^ tables[at | 512 | ((crc >> 16) & 0xFF)] ^ tables[at | 768 | (crc >> 24)])
    for i in np.flatnonzero(~short).tolist():  # tokens longer than the tables: zlib itself
        out[i] = zlib.crc32(bytes(int(length[i])), int(crc[i]) ^ 0xFFFFFFFF) ^ 0xFFFFFFFF
    return out


# A word's share of every block is cached as records of three uint32, whose first field is
# the padded column of an n-gram the word holds alone (so one shift and an or turn every
# record into a sort key): a char_wb n-gram is (column, 0, tag), a word token is (column
# of the token, crc32 of space + token, token length << 8 | tag), the end of a text is
# (0, 0, 0); tag is the block's position + 1.
_END_OF_TEXT = "\uffff"  # a noncharacter: joins the texts of a batch, as a word of its own
_SPACE_CRC = zlib.crc32(b" ")


def _pack(column: np.ndarray, second: np.ndarray | int, third: np.ndarray | int,
          ) -> np.ndarray:
    out = np.empty((column.size, 3), dtype=np.uint32)
    out[:, 0], out[:, 1], out[:, 2] = column, second, third
    return out


@cache
def _crc_table() -> np.ndarray:
    """zlib's crc32 table: crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8), inverted around."""
    crc = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        crc = np.where(crc & 1, (crc >> 1) ^ np.uint32(0xEDB88320), crc >> 1).astype(np.uint32)
    return crc


def _wb_crc32(padded: list[bytes], low: int, high: int) -> tuple[np.ndarray, np.ndarray]:
    """crc32 of the char_wb n-grams of padded ASCII words (as ``_char_wb_ngrams``: every
    window of ``low`` to ``high`` bytes; a word shorter than ``low`` once, whole), all
    windows of a batch advanced a byte at a time together; and the word of each."""
    table = _crc_table()
    length = np.fromiter(map(len, padded), dtype=np.int64, count=len(padded))
    data = np.frombuffer(b"".join(padded), dtype=np.uint8)
    stop = np.cumsum(length)
    windows = np.maximum(length - low + 1, 0)
    owner = np.repeat(np.arange(len(padded)), windows)
    start = stop[owner] - length[owner] + np.arange(owner.size) - np.repeat(
        np.cumsum(windows) - windows, windows)
    state = np.full(owner.size, 0xFFFFFFFF, dtype=np.uint32)
    crcs, owners = [], []
    for n in range(1, high + 1):
        if n > low:  # drop the windows that would run past their word
            keep = start + n <= stop[owner]
            start, owner, state = start[keep], owner[keep], state[keep]
        state = table[(state ^ data[start + n - 1]) & 0xFF] ^ (state >> 8)
        if n >= low:
            crcs.append(state ^ np.uint32(0xFFFFFFFF))
            owners.append(owner)
    short = np.flatnonzero(length < low).tolist()
    crcs.append(np.array([zlib.crc32(padded[i]) for i in short], dtype=np.uint32))
    owners.append(np.array(short, dtype=np.int64))
    return np.concatenate(crcs), np.concatenate(owners)


class _WordBlock:
    """A ``word`` block, per batch: a word's records are its tokens; an n-gram's crc32
    follows from its tokens' (``_crc_shift``), so no n-gram string is built. Valid for the
    default token pattern and n-grams from 1 token: those tokens never span whitespace, and
    lower-casing neither adds nor removes whitespace."""

    def __init__(self, block: Mapping[str, Any], offset: int, tag: int) -> None:
        self.lower = bool(block.get("lowercase", True))
        self.tokens = token_re(block.get("token_pattern", DEFAULT_TOKEN_PATTERN))
        self.high = int(block["ngram_range"][1])
        self.size = int(block["n_features"])
        self.offset = offset
        self.tag = tag

    def records(self, words: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The words' tokens, in order (see above), and the word (its index) of each."""
        tokens: list[bytes] = []
        counts: list[int] = []
        for word in words:
            found = self.tokens.findall(word.lower() if self.lower else word)
            tokens += [t.encode("utf-8") for t in found]
            counts.append(len(found))
        owner = np.repeat(np.arange(len(words)), counts)
        crc = np.fromiter(map(zlib.crc32, tokens), dtype=np.uint32, count=len(tokens))
        spaced = np.fromiter(map(zlib.crc32, tokens, itertools.repeat(_SPACE_CRC)),
                             dtype=np.uint32, count=len(tokens))
        length = np.fromiter(map(len, tokens), dtype=np.uint32, count=len(tokens))
        return _pack(crc % self.size + self.offset, spaced, length << 8 | self.tag), owner

    def keys(self, records: np.ndarray, tag: np.ndarray, row: np.ndarray,
             column_bits: int) -> list[np.ndarray]:
        """Sort keys of the n-grams of 2 or more tokens; the tokens' own are the records'."""
        if self.high < 2:
            return []
        at = np.flatnonzero(tag == self.tag)
        row = row[at]
        spaced, length = records[at, 1], records[at, 2] >> 8
        # crc32(space + token) = shift(crc32(space), len(token)) ^ crc32(token)
        chained = spaced ^ _crc_shift(np.full(at.size, _SPACE_CRC, dtype=np.uint32), length)
        keys = []
        for n in range(2, self.high + 1):
            # the n-gram at i: the (n-1)-gram at i, then space + token i+n-1
            chained = _crc_shift(chained[:-1], length[n - 1:] + 1) ^ spaced[n - 1:]
            first = row[:row.size - n + 1]
            same = first == row[n - 1:]  # all n tokens from one text
            column = (chained[same] % self.size + self.offset).astype(row.dtype)
            keys.append(first[same] << column_bits | column)
        return keys


class _CharWbBlock:
    """A ``char_wb`` block, per batch: a word's records are its n-grams' columns."""

    def __init__(self, block: Mapping[str, Any], offset: int, tag: int) -> None:
        self.lower = bool(block.get("lowercase", False))
        self.low, self.high = (int(n) for n in block["ngram_range"])
        self.size = int(block["n_features"])
        self.offset = offset
        self.tag = tag

    def records(self, words: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The words' n-grams (see above), and the word (its index) of each."""
        padded = [f" {w.lower() if self.lower else w} " for w in words]
        plain = np.array([p.isascii() for p in padded], dtype=bool)
        at = np.flatnonzero(plain)
        crc, owner = _wb_crc32([padded[i].encode("ascii") for i in at.tolist()],
                               self.low, self.high)
        grams: list[bytes] = []
        others: list[int] = []
        for i in np.flatnonzero(~plain).tolist():  # as _char_wb_ngrams, n-gram by n-gram
            text, before = padded[i], len(grams)
            for n in range(self.low, self.high + 1):
                if len(text) <= n:
                    grams.append(text.encode("utf-8"))
                    break
                grams += [text[j:j + n].encode("utf-8") for j in range(len(text) - n + 1)]
            others += [i] * (len(grams) - before)
        crc = np.concatenate([crc, np.fromiter(map(zlib.crc32, grams), dtype=np.uint32,
                                               count=len(grams))])
        owner = np.concatenate([at[owner], np.array(others, dtype=np.int64)])
        return _pack(crc % self.size + self.offset, 0, self.tag), owner

    def keys(self, records: np.ndarray, tag: np.ndarray, row: np.ndarray,
             column_bits: int) -> list[np.ndarray]:
        """None beyond the records' own."""
        return []


@dataclass(frozen=True, slots=True)
class _Chunk:
    """Up to ``_CHUNK_ROWS`` texts counted: per (text, block) group its n-gram columns and
    counts, and each group's length (``norms``); or the texts themselves, for the reference
    path; or nothing at all (no n-gram in any text)."""

    rows: int
    group: np.ndarray | None = None
    column: np.ndarray | None = None
    count: np.ndarray | None = None
    norms: np.ndarray | None = None
    texts: list[str] | None = None


@dataclass(frozen=True, slots=True)
class Counts:
    """A batch's n-gram counts (``HashedDot.count``), for the blocks of ``blocks`` (JSON)."""

    blocks: str
    chunks: list[_Chunk]


@cache
def _word_cache(blocks: str) -> tuple[dict[str, bytes], threading.Lock]:
    """The word-records cache of every HashedDot on these blocks (JSON), and its lock."""
    return {}, threading.Lock()


class HashedDot:
    """For a batch of texts, ``hashed_features`` dot the model's weights, fast.

    The same features as ``hashed_features`` (the weights were trained on those), without
    rebuilding and hashing every n-gram of every text: each whitespace-separated word's
    share of every block is cached (words repeat across texts), a batch is split into words
    at once, and counting, unit length per block and the dot product are a few numpy calls
    per batch, not per text. Each block's columns sit at a power-of-two stride, so one int
    key ``row << bits | column`` sorts a batch's n-grams into (text, n-gram) groups and
    shifts give back text, block and column. What this path does not cover (a custom token
    pattern, word n-grams not from 1 token, a text holding U+FFFF) goes through
    ``hashed_features`` per text. ``tests/test_anger_model.py`` checks that both agree.
    """

    def __init__(self, settings: Mapping[str, Any], weights: np.ndarray) -> None:
        blocks = settings["blocks"]
        sizes = [int(b["n_features"]) for b in blocks]
        if weights.shape != (sum(sizes),):
            raise ValueError(f"{weights.shape} weights for hashed blocks of {sum(sizes)}")
        self.settings = settings
        self.reference_weights = weights
        self.stride_bits = max((s - 1).bit_length() for s in sizes) if sizes else 0
        stride = 1 << self.stride_bits
        self.column_bits = max(len(sizes) * stride - 1, 1).bit_length()
        self.groups = 1 << (self.column_bits - self.stride_bits)  # per text: blocks, padded
        fit = (2**31 - 1) >> self.column_bits  # rows whose keys fit in int32 (faster to sort)
        self.key_type = np.dtype(np.int32 if fit else np.int64)
        self.chunk = min(_CHUNK_ROWS, fit) if fit else _CHUNK_ROWS
        self.fast = 0 < len(blocks) < 256 and self.column_bits <= 32 and all(
            b["kind"] == "char_wb" or b["kind"] == "word" and int(b["ngram_range"][0]) == 1
            and b.get("token_pattern", DEFAULT_TOKEN_PATTERN) == DEFAULT_TOKEN_PATTERN
            for b in blocks)
        self.weights = np.zeros(self.groups * stride, dtype=np.float64)
        self.blocks: list[_WordBlock | _CharWbBlock] = []
        start = 0
        for i, (block, size) in enumerate(zip(blocks, sizes, strict=True)):
            kind = _WordBlock if block["kind"] == "word" else _CharWbBlock
            self.blocks.append(kind(block, i * stride, i + 1))
            self.weights[i * stride:i * stride + size] = weights[start:start + size]
            start += size
        # a word's records depend only on the blocks: models built on the same blocks (the
        # anger and complaint models) share one cache, so a batch learns each word once
        self.blocks_key = json.dumps(blocks, sort_keys=True)
        self._words, self._lock = _word_cache(self.blocks_key)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """One number per text: its hashed features dot the weights."""
        return self.dot(self.count(texts))

    def count(self, texts: Sequence[str]) -> Counts:
        """The batch's n-gram counts: every model on the same blocks (the anger model and
        English's complaint model) dots them with its own weights, so a batch is featurized
        once for both."""
        cut = [str(t)[:MAX_CHARS] for t in texts]
        return Counts(self.blocks_key, [self._count(cut[at:at + self.chunk])
                                        for at in range(0, len(cut), self.chunk)])

    def dot(self, counts: Counts) -> np.ndarray:
        """One number per text of ``counts`` (from ``count`` of a HashedDot on the same
        blocks): its hashed features dot the weights."""
        if counts.blocks != self.blocks_key:
            raise ValueError("counts of other blocks than this model's")
        out = [self._dot(chunk) for chunk in counts.chunks]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float64)

    def _reference(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros(len(texts), dtype=np.float64)
        for row, text in enumerate(texts):
            index, value = hashed_features(text, self.settings)
            out[row] = self.reference_weights[index] @ value
        return out

    def _learn(self, words: list[str]) -> None:
        """Cache the records of new words, computed together: numpy works per batch."""
        if not words:
            return
        parts, owners = zip(*[block.records(words) for block in self.blocks], strict=True)
        owner = np.concatenate(owners)
        order = np.argsort(owner, kind="stable")  # by word; each block's in its order
        packed = np.concatenate(parts)[order].tobytes()
        ends = np.cumsum(np.bincount(owner, minlength=len(words))) * 12
        start = 0
        for word, end in zip(words, ends.tolist(), strict=True):
            self._words[word] = packed[start:end]
            start = end

    def _records(self, words: list[str]) -> bytes:
        """The words' records, one after the other; new words are added to the cache."""
        cache = self._words
        new = set(words).difference(cache)
        if new:
            if len(cache) + len(new) > _CACHE_WORDS:
                cache.clear()
                new = set(words)
            if _END_OF_TEXT in new:
                cache[_END_OF_TEXT] = bytes(12)
            self._learn(list(new - {_END_OF_TEXT}))
        records = b"".join(map(cache.__getitem__, words))
        for word in new:
            if len(word) > _CACHE_WORD_CHARS:  # rare, and large: not kept
                del cache[word]
        return records

    def _count(self, texts: list[str]) -> _Chunk:
        rows = len(texts)
        joined = f" {_END_OF_TEXT} ".join(texts)
        if not self.fast or joined.count(_END_OF_TEXT) != rows - 1:
            return _Chunk(rows, texts=texts)
        # str.split() cuts at runs of whitespace, as char_wb does (\s is str.isspace)
        with self._lock:
            packed = self._records(joined.split())
        records = np.frombuffer(packed, dtype=np.uint32).reshape(-1, 3)
        tag = records[:, 2] & 0xFF
        end = tag == 0
        row = np.cumsum(end, dtype=self.key_type)  # text of each record (ends: the next)
        keys = [row << self.column_bits | records[:, 0].astype(self.key_type)]
        for block in self.blocks:
            keys += block.keys(records, tag, row, self.column_bits)
        key = np.concatenate(keys)
        key[:end.size][end] = np.iinfo(self.key_type).max  # ends sort last, then go
        key.sort()
        key = key[:key.size - rows + 1]
        if key.size == 0:
            return _Chunk(rows)
        first = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
        count = np.diff(np.append(first, key.size)).astype(np.float64)
        key = key[first]
        group = key >> self.stride_bits  # row * groups + block
        column = key & ((1 << self.column_bits) - 1)
        norms = np.sqrt(np.bincount(group, count * count, minlength=rows * self.groups))
        return _Chunk(rows, group, column, count, norms)

    def _dot(self, chunk: _Chunk) -> np.ndarray:
        if chunk.texts is not None:
            return self._reference(chunk.texts)
        group, column, count, norms = chunk.group, chunk.column, chunk.count, chunk.norms
        if group is None or column is None or count is None or norms is None:
            return np.zeros(chunk.rows, dtype=np.float64)
        dots = np.bincount(group, count * self.weights[column], minlength=chunk.rows * self.groups)
        out = np.zeros_like(dots)
        np.divide(dots, norms, out=out, where=norms > 0)
        return out.reshape(chunk.rows, self.groups).sum(axis=1)
