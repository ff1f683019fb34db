"""How texts are held (packed UTF-8) and how models read them.

Character-level models read a text as its first ``length`` characters (1014 in the
VDCNN paper), lower-cased, each mapped to its place in ``svp.schema.ALPHABET`` (from 2), with
0 for padding and 1 for any character outside the alphabet: :func:`encode_characters`.
fastText reads the words of :func:`fasttext_normalize`. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from svp.schema import ALPHABET, DEFAULT_LENGTH, PAD, UNKNOWN, VOCAB_SIZE  # noqa: F401  (the format, defined at the bottom)

# Byte -> code. Upper-case ASCII letters share their lower-case code; every byte that
# starts a non-ASCII character (and any ASCII outside the alphabet) is "unknown".
CODES = np.full(256, UNKNOWN, dtype=np.uint8)
for _index, _character in enumerate(ALPHABET):
    CODES[ord(_character)] = _index + 2
    CODES[ord(_character.upper())] = _index + 2


# --------------------------------------------------------------------------- packed texts


@dataclass(frozen=True)
class TextArray:
    """Many texts as one uint8 array of UTF-8 bytes plus int64 offsets (N + 1)."""

    data: np.ndarray
    offsets: np.ndarray

    @classmethod
    def from_strings(cls, texts: Sequence[str]) -> "TextArray":
        encoded = [text.encode("utf-8") for text in texts]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
        return cls(np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> str:
        return self.data[self.offsets[index] : self.offsets[index + 1]].tobytes().decode("utf-8")

    def __iter__(self):
        return iter(self.strings())

    def take(self, index: Sequence[int] | np.ndarray, rows_at_once: int = 1 << 16) -> "TextArray":
        """The texts at ``index``, in that order, packed: bytes copied by numpy a block of rows at a
        time, so no Python string is made and the byte positions never take 8 bytes a byte at once."""
        index = np.asarray(index, dtype=np.int64)
        starts, ends = self.offsets[:-1][index], self.offsets[1:][index]
        lengths = ends - starts
        offsets = np.zeros(len(index) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        data = np.empty(int(offsets[-1]), dtype=np.uint8)
        for first in range(0, len(index), rows_at_once):
            last = min(first + rows_at_once, len(index))
            low, high = offsets[first], offsets[last]
            # Each output byte's source: its text's start plus its place within the text.
            source = np.arange(low, high) + np.repeat(starts[first:last] - offsets[first:last], lengths[first:last])
            data[low:high] = self.data[source]
        return TextArray(data, offsets)

    def strings(self, index: Sequence[int] | np.ndarray | None = None) -> list[str]:
        """The texts (all, or those at ``index``, in that order) as Python strings."""
        raw = self.data.tobytes()
        starts, ends = self.offsets[:-1], self.offsets[1:]
        if index is not None:
            index = np.asarray(index, dtype=np.int64)
            starts, ends = starts[index], ends[index]
        return [raw[a:b].decode("utf-8") for a, b in zip(starts.tolist(), ends.tolist())]

    def character_counts(self) -> np.ndarray:
        """Characters (not bytes) per text: UTF-8 continuation bytes are not counted."""
        starts = np.concatenate([[0], np.cumsum((self.data & 0xC0) != 0x80, dtype=np.int64)])
        return np.diff(starts[self.offsets])


def encode_characters(texts: TextArray, length: int, chunk: int = 8192) -> np.ndarray:
    """(N, length) uint8 character codes: each text's first ``length`` characters, then padding.

    Works on the UTF-8 bytes directly: a character is one code however many bytes it
    takes (continuation bytes are skipped), so no text is decoded into Python strings.
    """
    if length < 1:
        raise ValueError(f"length must be positive, got {length}")
    out = np.full((len(texts), length), PAD, dtype=np.uint8)
    for first in range(0, len(texts), chunk):
        last = min(len(texts), first + chunk)
        low = texts.offsets[first]
        raw = texts.data[low : texts.offsets[last]]
        starts_character = (raw & 0xC0) != 0x80
        codes = CODES[raw[starts_character]]
        # Character offsets of the texts within this chunk.
        before = np.concatenate([[0], np.cumsum(starts_character, dtype=np.int64)])
        char_offsets = before[texts.offsets[first : last + 1] - low]
        kept = np.minimum(np.diff(char_offsets), length)
        rows = np.repeat(np.arange(last - first), kept)
        columns = np.arange(kept.sum()) - np.repeat(np.cumsum(kept) - kept, kept)
        out[first + rows, columns] = codes[np.repeat(char_offsets[:-1], kept) + columns]
    return out


# --------------------------------------------------------------------------- fastText input


_FASTTEXT_TABLE = str.maketrans(
    {"'": " ' ", '"': "", ".": " . ", ",": " , ", "(": " ( ", ")": " ) ", "!": " ! ", "?": " ? ",
     ";": " ", ":": " ", "\n": " ", "\r": " "}
)


def fasttext_normalize(text: str) -> str:
    """fastText's classification-example normalisation (lower case, punctuation split off,
    ``<br />`` removed), as the SVP authors ran it with sed; one line, single spaces."""
    return " ".join(text.lower().replace("<br />", " ").translate(_FASTTEXT_TABLE).split())
