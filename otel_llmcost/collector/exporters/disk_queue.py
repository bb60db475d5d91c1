"""A durable FIFO of serialized batches on disk that survives ``kill -9`` and power loss.

On-disk format (one directory per queue, owned by one process at a time through a ``lock`` file):

- ``segment-<20-digit sequence>.log``: an 8-byte magic ``OLCQSEG1``, then records, each
  ``length`` (u32, big-endian) ``crc`` (u32, big-endian: CRC-32 of the 4 length bytes followed by
  the payload) and ``payload`` (``length`` bytes). A put appends one record and fsyncs before it
  returns. The write segment rolls over once it holds ``segment_bytes``.
- ``committed.json``: ``{"version": 1, "segment": S, "offset": O}``, everything before byte ``O`` of
  segment ``S`` (and every older segment) has been delivered. Replaced atomically (temp file, fsync,
  ``os.replace``) on every commit.

Recovery on open: segments older than the committed one are deleted; every segment is scanned and
cut at its first torn or corrupt record (a partial write at kill time is the last record of the last
segment; anything else is reported as corruption); records after the committed offset are pending
again. Delivery is at least once: a record whose commit was not persisted (killed between delivery
and commit; or, after a power loss, a commit whose rename had not reached the disk) is delivered
again, never lost. A commit that returned before a ``kill -9`` is never redelivered. Fully delivered
segments are deleted as soon as the consumer moves past them.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

try:  # POSIX: one process per queue directory
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["DiskQueue", "DiskQueueError", "DiskQueueFull", "Token"]

_log = logging.getLogger(__name__)

MAGIC = b"OLCQSEG1"
_HEADER = struct.Struct(">II")  # payload length, CRC-32 of (length bytes + payload)
_MAX_RECORD = 0xFFFFFFFF
_COMMITTED = "committed.json"
_LOCK = "lock"
_PREFIX, _SUFFIX = "segment-", ".log"


class DiskQueueError(Exception):
    """The queue directory cannot be used (in use by another process, not a queue, closed)."""


class DiskQueueFull(DiskQueueError):
    """``max_bytes`` of undelivered records are already queued."""


@dataclass(frozen=True, slots=True)
class Token:
    """Where one record lives: pass it back to :meth:`DiskQueue.commit` once it is delivered."""

    segment: int
    offset: int
    end: int
    size: int


def _crc(length: bytes, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(length))


def _segment_name(seq: int) -> str:
    return f"{_PREFIX}{seq:020d}{_SUFFIX}"


def _fsync_dir(directory: Path) -> None:
    # a new or renamed file's directory entry survives power loss only once the directory is synced
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


_sync = getattr(os, "fdatasync", os.fsync)


def _scan(path: Path) -> tuple[list[tuple[int, int]], int, int]:
    """Return the (offset, payload size) of every valid record, where valid data ends, and the file size."""
    records: list[tuple[int, int]] = []
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < len(MAGIC):
        return records, 0, len(data)
    if data[: len(MAGIC)] != MAGIC:
        raise DiskQueueError(f"{path}: not an otel-llmcost queue segment (bad magic)")
    pos = len(MAGIC)
    while pos + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, pos)
        start = pos + _HEADER.size
        if start + length > len(data):
            break
        if _crc(data[pos : pos + 4], data[start : start + length]) != crc:
            break
        records.append((pos, length))
        pos = start + length
    return records, pos, len(data)


class DiskQueue:
    """A durable FIFO of byte records; thread-safe for one producer and one consumer.

    Records are delivered at least once: :meth:`peek` returns the oldest undelivered record until
    :meth:`commit` marks it delivered; after a crash, everything not committed is delivered again.
    """

    def __init__(
        self, directory: str | os.PathLike[str], max_bytes: int = 1 << 30, *, segment_bytes: int = 64 << 20
    ) -> None:
        """Open (creating or recovering) the queue in *directory*.

        Args:
            directory: the queue's own directory; created if missing.
            max_bytes: undelivered payload bytes above which :meth:`put` refuses (a soft limit: the
                record that crosses it is accepted). Disk use is at most about
                ``max_bytes + segment_bytes`` plus one record.
            segment_bytes: size at which the write segment rolls over.

        Raises:
            ValueError: a size is not positive.
            DiskQueueError: another process holds the directory, or it holds foreign segment files.
        """
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes!r}")
        if segment_bytes <= 0:
            raise ValueError(f"segment_bytes must be positive, got {segment_bytes!r}")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_file = self._acquire_dir_lock()
        # lock order: _write_lock, then _read_lock, then _lock; _lock is never held during I/O by put
        self._write_lock = threading.Lock()  # the producer's file and segment rollover
        self._read_lock = threading.Lock()  # the consumer's position and reader file
        self._lock = threading.Lock()  # counters and segment bookkeeping shared by both
        self._pending: dict[int, list[int]] = {}  # segment -> [records pending, bytes pending]
        self._count = 0
        self._bytes = 0
        self._closed = False
        self.lost_records = 0  # records cut off by corruption found after a successful open
        self._wfile: IO[bytes] | None = None
        self._rfile: IO[bytes] | None = None
        self._rfile_seq = -1
        try:
            self._recover()
        except BaseException:
            self._release_dir_lock()
            raise

    # -- opening ---------------------------------------------------------------------------------

    def _acquire_dir_lock(self) -> IO[bytes] | None:
        if fcntl is None:  # pragma: no cover
            return None
        f = open(self.directory / _LOCK, "ab")  # noqa: SIM115 - held for the queue's lifetime
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            f.close()
            raise DiskQueueError(f"{self.directory}: in use by another process") from exc
        return f

    def _release_dir_lock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing releases the flock
            self._lock_file = None

    def _segments_on_disk(self) -> list[int]:
        seqs = []
        for p in self.directory.iterdir():
            name = p.name
            if name.startswith(_PREFIX) and name.endswith(_SUFFIX):
                digits = name[len(_PREFIX) : -len(_SUFFIX)]
                if digits.isdigit():
                    seqs.append(int(digits))
        return sorted(seqs)

    def _read_committed(self) -> tuple[int, int]:
        path = self.directory / _COMMITTED
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            segment, offset = int(raw["segment"]), int(raw["offset"])
        except FileNotFoundError:
            return 0, 0
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # replaced atomically, so this is outside damage: redeliver everything rather than lose it
            _log.warning(
                "otel-llmcost disk queue %s: unreadable %s (%s); redelivering all", self.directory, _COMMITTED, exc
            )
            return 0, 0
        return segment, offset

    def _recover(self) -> None:
        committed_seq, committed_off = self._read_committed()
        seqs = self._segments_on_disk()
        for seq in [s for s in seqs if s < committed_seq]:  # delivered; deletion was cut short
            (self.directory / _segment_name(seq)).unlink(missing_ok=True)
        seqs = [s for s in seqs if s >= committed_seq]
        kept: list[int] = []
        first_offset = len(MAGIC)
        for i, seq in enumerate(seqs):
            path = self.directory / _segment_name(seq)
            records, valid_end, size = _scan(path)
            last = i == len(seqs) - 1
            if valid_end < len(MAGIC):  # created but its magic never written: empty
                if last:
                    self._write_fresh_segment(path)
                    kept.append(seq)
                    self._pending[seq] = [0, 0]
                else:
                    path.unlink()
                continue
            if valid_end < size:
                how = "a torn last record" if last else "corruption"
                log = _log.info if last else _log.warning
                log(
                    "otel-llmcost disk queue %s: %s: dropping %d bytes of %s",
                    self.directory,
                    path.name,
                    size - valid_end,
                    how,
                )
                with open(path, "r+b") as f:
                    f.truncate(valid_end)
                    f.flush()
                    _sync(f.fileno())
            start = committed_off if seq == committed_seq else 0
            live = [(off, n) for off, n in records if off >= start]
            if not kept:
                # the consumer starts at the oldest pending record; a committed offset that is not
                # a record boundary (damage) is rounded up to the next one
                first_offset = live[0][0] if live else valid_end
            self._pending[seq] = [len(live), sum(n for _, n in live)]
            self._count += len(live)
            self._bytes += sum(n for _, n in live)
            kept.append(seq)
        if not kept:
            seq = max(committed_seq, 1)
            self._write_fresh_segment(self.directory / _segment_name(seq))
            kept.append(seq)
            self._pending[seq] = [0, 0]
            first_offset = len(MAGIC)
        self._rseq = kept[0]
        self._roff = first_offset
        self._wseq = kept[-1]
        wpath = self.directory / _segment_name(self._wseq)
        self._wfile = open(wpath, "ab")  # noqa: SIM115 - the producer's handle, closed in close()
        self._wsize = wpath.stat().st_size

    def _write_fresh_segment(self, path: Path) -> None:
        with open(path, "wb") as f:
            f.write(MAGIC)
            f.flush()
            _sync(f.fileno())
        _fsync_dir(self.directory)

    # -- producer ----------------------------------------------------------------------------------

    def has_room(self) -> bool:
        """Whether :meth:`put` would accept a record now."""
        with self._lock:
            return not self._closed and self._bytes < self.max_bytes

    def put(self, payload: bytes) -> None:
        """Append *payload*; when this returns, the record is on disk (written and fsynced).

        Raises:
            DiskQueueFull: ``max_bytes`` are already pending.
            DiskQueueError: the queue is closed.
            ValueError: the payload is 4 GiB or larger.
            OSError: the write failed (disk full...); nothing was queued.
        """
        if len(payload) > _MAX_RECORD:
            raise ValueError(f"record of {len(payload)} bytes exceeds the 4 GiB limit")
        length = struct.pack(">I", len(payload))
        record = _HEADER.pack(len(payload), _crc(length, payload)) + payload
        with self._write_lock:
            with self._lock:
                if self._closed:
                    raise DiskQueueError(f"{self.directory}: queue closed")
                if self._bytes >= self.max_bytes:
                    raise DiskQueueFull(f"{self.directory}: {self._bytes} bytes pending (max_bytes={self.max_bytes})")
            if self._wsize > len(MAGIC) and self._wsize + len(record) > self.segment_bytes:
                self._roll()
            f = self._wfile
            if f is None:  # pragma: no cover - only after close(), checked above
                raise DiskQueueError(f"{self.directory}: queue closed")
            try:
                f.write(record)
                f.flush()
                _sync(f.fileno())
            except BaseException:
                self._undo_partial_write()
                raise
            self._wsize += len(record)
            with self._lock:
                entry = self._pending[self._wseq]
                entry[0] += 1
                entry[1] += len(payload)
                self._count += 1
                self._bytes += len(payload)

    def _undo_partial_write(self) -> None:
        # a half-written record must not stay in front of later ones: cut it off, or failing that,
        # leave the segment behind (recovery will cut it) and write the next record elsewhere
        try:
            assert self._wfile is not None
            self._wfile.truncate(self._wsize)
            self._wfile.flush()
        except (OSError, ValueError):
            _log.warning("otel-llmcost disk queue %s: could not undo a failed write; rolling over", self.directory)
            try:
                self._roll()
            except OSError:
                _log.exception("otel-llmcost disk queue %s: rollover failed", self.directory)

    def _roll(self) -> None:
        """Start a new write segment (called with ``_write_lock`` held)."""
        seq = self._wseq + 1
        path = self.directory / _segment_name(seq)
        self._write_fresh_segment(path)
        old = self._wfile
        self._wfile = open(path, "ab")  # noqa: SIM115 - the producer's handle, closed in close()
        self._wsize = len(MAGIC)
        if old is not None:
            old.close()
        with self._lock:
            self._pending[seq] = [0, 0]
            self._wseq = seq

    # -- consumer ----------------------------------------------------------------------------------

    def peek(self) -> tuple[Token, bytes] | None:
        """Return the oldest undelivered record and its token, or ``None`` when all is delivered.

        The same record is returned until it is committed.
        """
        while True:
            with self._read_lock:
                with self._lock:
                    if self._closed:
                        raise DiskQueueError(f"{self.directory}: queue closed")
                    if self._count == 0:
                        return None
                    seq = self._rseq
                    finished = self._pending[seq][0] == 0 and seq < self._wseq
                if finished:
                    self._retire(seq)
                    continue
                record = self._read_at(seq, self._roff)
                if record is not None:
                    return record
            self._skip_corrupt_segment(seq)

    def _read_at(self, seq: int, offset: int) -> tuple[Token, bytes] | None:
        if self._rfile_seq != seq:
            if self._rfile is not None:
                self._rfile.close()
            self._rfile = open(self.directory / _segment_name(seq), "rb")  # noqa: SIM115 - the consumer's handle
            self._rfile_seq = seq
        f = self._rfile
        assert f is not None
        f.seek(offset)
        header = f.read(_HEADER.size)
        if len(header) == _HEADER.size:
            length, crc = _HEADER.unpack(header)
            payload = f.read(length)
            if len(payload) == length and _crc(header[:4], payload) == crc:
                return Token(seq, offset, offset + _HEADER.size + length, length), payload
        return None

    def _skip_corrupt_segment(self, seq: int) -> None:
        # records written and fsynced by this process no longer read back: the file was damaged
        # from outside. Give up on the rest of that segment rather than wedge the queue forever.
        with self._write_lock, self._read_lock:
            if seq == self._wseq:
                self._roll()
            with self._lock:
                lost = self._pending[seq][0]
                self._count -= lost
                self._bytes -= self._pending[seq][1]
                self._pending[seq] = [0, 0]
                self.lost_records += lost
        _log.error(
            "otel-llmcost disk queue %s: %s is corrupt; %d records lost", self.directory, _segment_name(seq), lost
        )

    def commit(self, token: Token) -> None:
        """Mark the record of *token* (the one :meth:`peek` returned) as delivered, durably."""
        with self._read_lock:
            with self._lock:
                if self._closed:
                    raise DiskQueueError(f"{self.directory}: queue closed")
                if (token.segment, token.offset) != (self._rseq, self._roff):
                    return  # already committed (or not the oldest record): nothing to do
                entry = self._pending[token.segment]
                entry[0] -= 1
                entry[1] -= token.size
                self._count -= 1
                self._bytes -= token.size
                self._roff = token.end
                finished = entry[0] == 0 and token.segment < self._wseq
            self._write_committed(token.segment, token.end)
            if finished:
                self._retire(token.segment)

    def _retire(self, seq: int) -> None:
        """Delete fully delivered segment *seq* and move to the next (``_read_lock`` held)."""
        if self._rfile_seq == seq and self._rfile is not None:
            self._rfile.close()
            self._rfile, self._rfile_seq = None, -1
        with self._lock:
            later = [s for s in self._pending if s > seq]
            del self._pending[seq]
            self._rseq = min(later)  # exists: seq < _wseq
            self._roff = len(MAGIC)
        # the committed file names seq (or earlier): recovery deletes seq if this unlink is lost
        (self.directory / _segment_name(seq)).unlink(missing_ok=True)

    def _write_committed(self, segment: int, offset: int) -> None:
        tmp = self.directory / (_COMMITTED + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"version": 1, "segment": segment, "offset": offset}, f)
            f.flush()
            _sync(f.fileno())
        os.replace(tmp, self.directory / _COMMITTED)

    # -- state -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Return how many records are pending (put and not committed)."""
        with self._lock:
            return self._count

    @property
    def bytes_pending(self) -> int:
        """Payload bytes put and not committed."""
        with self._lock:
            return self._bytes

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Close the files and release the directory; pending records stay for the next open."""
        with self._write_lock, self._read_lock:
            with self._lock:
                if self._closed:
                    return
                self._closed = True
            for f in (self._wfile, self._rfile):
                if f is not None:
                    f.close()
            self._wfile = self._rfile = None
            self._release_dir_lock()

    def __enter__(self) -> DiskQueue:
        """Return the queue itself."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the queue."""
        self.close()
