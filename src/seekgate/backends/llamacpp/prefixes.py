"""Prefix caches that outlive a context: saved llama.cpp sequence states, in memory and on disk.

A context holds the keys and values of one prompt. When another request takes the context they
are gone, and so they are when the process restarts or the model is swapped out. Agents such as
Claude Code resend the same long prefix (system prompt, tools, the conversation so far) on every
turn, so after a request with a long prompt the engine saves its context's state here, and a
later request whose prompt shares more of its prefix with a saved state than with any context
restores that state instead of computing it again.

Two tiers, each bounded in bytes, least recently used evicted first: memory (the state bytes)
and disk (one file per state in `<root>/<model fingerprint>/`, written by a background thread).
The disk bound covers the whole root, the states of other models included, so swapping back
to a model finds its states still there until newer ones push them out. Every file starts with
the fingerprint of the weights it came from and is refused by any other model.

A state whose tokens extend a saved one replaces it: restoring the longer state and dropping
its tail serves every prompt the shorter one served.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path

import llama_cpp
import numpy as np

__all__ = ["PrefixStore", "SavedPrefix", "fingerprint", "prefix_length"]

log = logging.getLogger("seekgate.llamacpp.prefixes")

_MAGIC = b"SEEKGATE-KV1\n"
_SUFFIX = ".kv"
_FINGERPRINT_BYTES = 4 << 20


def fingerprint(weights: Path) -> str:
    """Identifies a model file and the llama.cpp build that reads it: a state saved by one is
    meaningless to any other. Hashes the size and the first 4 MiB (the GGUF header: tensor
    names, shapes and types) rather than gigabytes of weights."""
    digest = hashlib.sha256()
    digest.update(f"{weights.stat().st_size}:{llama_cpp.__version__}:".encode())
    with weights.open("rb") as f:
        digest.update(f.read(_FINGERPRINT_BYTES))
    return digest.hexdigest()[:24]


def prefix_length(a: np.ndarray, b: np.ndarray) -> int:
    """How many leading tokens two token arrays share."""
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if len(differ) else n


@dataclass(eq=False)
class SavedPrefix:
    tokens: np.ndarray
    size: int
    """Bytes of the state."""
    data: bytearray | None = None
    """The state, while it is in the memory tier."""
    path: Path | None = None
    """Its file, once written to the disk tier."""
    used: int = 0
    """A tick of the store's clock: larger is more recently used."""
    key: str = field(default="")
    pending: bool = False
    """Queued for the disk tier: its bytes stay in memory until they are written."""


class PrefixStore:
    def __init__(self, root: Path, model: str, *, memory_bytes: int, disk_bytes: int) -> None:
        self.root = root
        self.model = model
        self.folder = root / model
        self._memory_limit = memory_bytes
        self._disk_limit = disk_bytes
        self._lock = threading.Lock()
        self._entries: dict[str, SavedPrefix] = {}
        self._clock = 0
        self.stats = {"saved": 0, "restored": 0, "refused": 0, "evicted": 0}
        self._writes: queue.Queue[SavedPrefix | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        if disk_bytes > 0:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._scan()
            self._writer = threading.Thread(target=self._write_loop, name=f"prefix-writer-{model[:8]}", daemon=True)
            self._writer.start()

    # -- lookups (engine worker threads) -------------------------------------------------------

    def best(self, prompt: np.ndarray) -> tuple[SavedPrefix | None, int]:
        """The saved state that shares the longest prefix with `prompt`, and how long it is."""
        with self._lock:
            found, length = None, 0
            for entry in self._entries.values():
                n = prefix_length(entry.tokens, prompt)
                if n > length:
                    found, length = entry, n
            return found, length

    def load(self, entry: SavedPrefix) -> bytearray | None:
        """The state's bytes, from memory or its file; None (and the entry dropped) if unreadable."""
        with self._lock:
            self._clock += 1
            entry.used = self._clock
            data, path = entry.data, entry.path
        if data is None and path is not None:
            read = self._read(path, want_state=True)
            if read is None:
                self.discard(entry)
                return None
            data = read[1]
            if path.exists():
                os.utime(path)  # recency survives a restart
        if data is not None:
            self.stats["restored"] += 1
        return data

    def covers(self, tokens: np.ndarray) -> bool:
        """Whether a saved state already holds all of `tokens` (no need to save them again)."""
        with self._lock:
            return any(len(e.tokens) >= len(tokens) and prefix_length(e.tokens, tokens) == len(tokens) for e in self._entries.values())

    # -- saving ------------------------------------------------------------------------------

    def put(self, tokens: np.ndarray, data: bytearray) -> None:
        """Keep a state in memory and queue it for disk; states it extends are replaced."""
        if not self._memory_limit and not self._disk_limit:
            return
        key = hashlib.sha1(tokens.tobytes()).hexdigest()[:20]
        entry = SavedPrefix(tokens=tokens, size=len(data), data=data, key=key, pending=self._writer is not None)
        with self._lock:
            self._clock += 1
            entry.used = self._clock
            for old in [e for e in self._entries.values() if len(e.tokens) <= len(tokens) and prefix_length(e.tokens, tokens) == len(e.tokens)]:
                self._drop(old)
            self._entries[key] = entry
            self.stats["saved"] += 1
            self._bound_memory()
        if self._writer is not None:
            self._writes.put(entry)

    def discard(self, entry: SavedPrefix) -> None:
        with self._lock:
            self._drop(entry)

    def flush(self) -> None:
        """Wait until every queued state is on disk."""
        if self._writer is not None:
            self._writes.join()

    def close(self) -> None:
        if self._writer is not None:
            self._writes.put(None)
            self._writer.join()
            self._writer = None

    def usage(self) -> dict[str, int]:
        with self._lock:
            return {
                "entries": len(self._entries),
                "memory_bytes": sum(e.size for e in self._entries.values() if e.data is not None),
                **self.stats,
            }

    # -- internals (callers hold the lock unless said otherwise) -------------------------------

    def _drop(self, entry: SavedPrefix) -> None:
        if self._entries.get(entry.key) is entry:
            del self._entries[entry.key]
        entry.data = None
        if entry.path is not None:
            entry.path.unlink(missing_ok=True)
            entry.path = None

    def _bound_memory(self) -> None:
        held = sorted((e for e in self._entries.values() if e.data is not None), key=lambda e: e.used)
        total = sum(e.size for e in held)
        for entry in held:
            if total <= self._memory_limit:
                break
            if entry.pending:
                continue  # the writer still needs these bytes; it frees them after writing
            total -= entry.size
            entry.data = None
            if entry.path is None:
                del self._entries[entry.key]  # not on disk either: the state is gone
                self.stats["evicted"] += 1

    def _write_loop(self) -> None:
        while True:
            entry = self._writes.get()
            try:
                if entry is None:
                    return
                self._write(entry)
            except OSError as exc:
                log.warning("could not save a prefix cache to %s: %s", self.folder, exc)
            finally:
                self._writes.task_done()

    def _write(self, entry: SavedPrefix) -> None:
        """Runs on the writer thread, without the lock while writing."""
        with self._lock:
            data = entry.data
            if data is None or self._entries.get(entry.key) is not entry:
                return  # replaced before its turn came
            if entry.size > self._disk_limit:
                entry.pending = False
                self._bound_memory()
                return
        path = self.folder / (entry.key + _SUFFIX)
        header = json.dumps({"model": self.model, "tokens": len(entry.tokens)}).encode()
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as f:
            f.write(_MAGIC + struct.pack("<I", len(header)) + header)
            f.write(entry.tokens.astype("<i4").tobytes())
            f.write(data)
        os.replace(tmp, path)
        with self._lock:
            entry.pending = False
            if self._entries.get(entry.key) is entry:
                entry.path = path
                self._bound_memory()
            else:
                path.unlink(missing_ok=True)
        self._bound_disk()

    def _bound_disk(self) -> None:
        """Evict the least recently used files under the whole root until it fits."""
        files = []
        for path in self.root.glob(f"*/*{_SUFFIX}"):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            files.append((st.st_mtime, st.st_size, path))
        total = sum(size for _, size, _ in files)
        if total <= self._disk_limit:
            return
        with self._lock:
            mine = {e.path: e for e in self._entries.values() if e.path is not None}
            recency = {path: e.used for path, e in mine.items()}
        # Other models' files are older than anything this process used; among ours, our clock.
        files.sort(key=lambda f: (f[2] in recency, recency.get(f[2], 0), f[0]))
        for _, size, path in files:
            if total <= self._disk_limit:
                break
            with self._lock:
                entry = mine.get(path)
                if entry is not None and self._entries.get(entry.key) is entry:
                    entry.path = None
                    if entry.data is None:
                        del self._entries[entry.key]
            path.unlink(missing_ok=True)
            total -= size
            self.stats["evicted"] += 1

    def _scan(self) -> None:
        """Index the states this model saved before (a restart, or a swap back to it)."""
        for path in sorted(self.folder.glob(f"*{_SUFFIX}"), key=lambda p: p.stat().st_mtime):
            read = self._read(path, want_state=False)
            if read is None:
                continue
            tokens = read[0]
            self._clock += 1
            key = path.stem
            self._entries[key] = SavedPrefix(tokens=tokens, size=path.stat().st_size, path=path, used=self._clock, key=key)
        for stale in self.folder.glob("*.tmp"):
            stale.unlink(missing_ok=True)  # a write cut short by a crash

    def _read(self, path: Path, *, want_state: bool) -> tuple[np.ndarray, bytearray | None] | None:
        """A file's tokens, and its state bytes when asked; None if it is unreadable or not ours."""
        try:
            with path.open("rb") as f:
                if f.read(len(_MAGIC)) != _MAGIC:
                    raise ValueError("not a seekgate prefix cache")
                (length,) = struct.unpack("<I", f.read(4))
                header = json.loads(f.read(length))
                if header.get("model") != self.model:
                    raise ValueError(f"saved by another model ({header.get('model')}), not {self.model}")
                tokens = np.frombuffer(f.read(4 * int(header["tokens"])), dtype="<i4").astype(np.int32)
                if not want_state:
                    return tokens, None
                state = bytearray(os.fstat(f.fileno()).st_size - f.tell())
                f.readinto(state)
                return tokens, state
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, struct.error) as exc:
            log.warning("refusing prefix cache %s: %s", path, exc)
            self.stats["refused"] += 1
            return None
