"""Where audit records go: a JSON-lines file shared by many processes, or syslog.

File: every record is one ``write`` to a descriptor opened with ``O_APPEND`` (so processes sharing the
file never interleave or overwrite each other's lines), fsynced unless that is switched off. A command's
record is appended *before* the command acts, with the outcome ``pending``; when the command ends its
result is written into the same record, in place: the result sits in a fixed-width slot padded with
spaces, so the line keeps its length and stays valid JSON. A process killed in between leaves
``pending``, which is what an auditor should see. The in-place write goes through a second descriptor on
the same file (Linux ignores the offset of ``pwrite`` on an ``O_APPEND`` descriptor), only after reading
back that the slot still holds what was written (a rotation by truncation is never written into).

Syslog: one datagram to the local syslog socket (``/dev/log``, facility authpriv), tag ``lkpersist-audit``.
A message cannot be amended, so a command's record is sent once, when it ends; the socket is connected
before the command acts, so a syslog that is not there stops the command with nothing done.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Protocol

from lkpersist.exceptions import StoreError

SYSLOG_ADDRESS = "/dev/log"
_AUTHPRIV_INFO = 10 * 8 + 6
_FILE_MODE = 0o600


class AuditWriteError(StoreError):
    """An audit record could not be written (the CLI exits 3; the agent logs a warning)."""


class Pending(Protocol):
    def finish(self, result_slot: bytes) -> None:
        """Write the record's final result (a slot of the reserved width)."""

    def abandon(self) -> None:
        """Release what the pending record holds without finishing it."""


class Sink(Protocol):
    def begin(self, line: bytes, slot_at: int) -> Pending:
        """Make the record durable before the command acts; ``slot_at``: where its result slot starts."""

    def write(self, line: bytes) -> None:
        """Write a finished record."""


@dataclass
class FileSink:
    path: str
    fsync: bool = True

    def begin(self, line: bytes, slot_at: int) -> Pending:
        append_fd, patch_fd = self._open_pair()
        try:
            start = self._append(append_fd, line)
        except BaseException:
            os.close(patch_fd)
            raise
        finally:
            os.close(append_fd)
        return _PendingLine(self, patch_fd, start + slot_at, line[slot_at:-2])

    def write(self, line: bytes) -> None:
        fd = self._open(os.O_WRONLY | os.O_APPEND)
        try:
            self._append(fd, line)
        finally:
            os.close(fd)

    def _append(self, fd: int, line: bytes) -> int:
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(f"short write ({written} of {len(line)} bytes)")
            if self.fsync:
                os.fsync(fd)
            return os.lseek(fd, 0, os.SEEK_CUR) - len(line)
        except OSError as exc:
            raise self._error("cannot write to", exc) from exc

    def _open_pair(self) -> tuple[int, int]:
        """An appending and a patching descriptor on the same file (again if it was rotated in between)."""
        while True:
            append_fd = self._open(os.O_WRONLY | os.O_APPEND)
            try:
                patch_fd = self._open(os.O_RDWR)
            except BaseException:
                os.close(append_fd)
                raise
            if os.fstat(append_fd).st_ino == os.fstat(patch_fd).st_ino:
                return append_fd, patch_fd
            os.close(append_fd)
            os.close(patch_fd)

    def _open(self, flags: int) -> int:
        try:
            return os.open(self.path, flags | os.O_CREAT | os.O_CLOEXEC, _FILE_MODE)
        except OSError as exc:
            raise self._error("cannot open", exc) from exc

    def _error(self, doing: str, exc: OSError) -> AuditWriteError:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        return AuditWriteError(f"audit log: {doing} {self.path!r}: {reason}")


@dataclass
class _PendingLine:
    sink: FileSink
    fd: int
    at: int
    placeholder: bytes

    def finish(self, result_slot: bytes) -> None:
        try:
            if os.pread(self.fd, len(self.placeholder), self.at) != self.placeholder:
                raise OSError(0, "the record is no longer where it was written (file truncated or rewritten)")
            os.pwrite(self.fd, result_slot, self.at)
            if self.sink.fsync:
                os.fsync(self.fd)
        except OSError as exc:
            raise self.sink._error("cannot record the outcome in", exc) from exc
        finally:
            self.abandon()

    def abandon(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@dataclass
class SyslogSink:
    address: str = SYSLOG_ADDRESS
    tag: str = "lkpersist-audit"

    def begin(self, line: bytes, slot_at: int) -> Pending:
        return _PendingSyslog(self, self._connect(), line[:slot_at])

    def write(self, line: bytes) -> None:
        sock = self._connect()
        try:
            self._send(sock, line)
        finally:
            sock.close()

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.connect(self.address)
        except OSError as exc:
            sock.close()
            raise AuditWriteError(f"audit log: syslog socket {self.address!r}: {os.strerror(exc.errno or 0)}") from exc
        return sock

    def _send(self, sock: socket.socket, line: bytes) -> None:
        message = b"<%d>%s[%d]: %s" % (_AUTHPRIV_INFO, self.tag.encode(), os.getpid(), line.rstrip(b"\n"))
        try:
            sock.send(message)
        except OSError as exc:
            raise AuditWriteError(f"audit log: syslog socket {self.address!r}: {os.strerror(exc.errno or 0)}") from exc


@dataclass
class _PendingSyslog:
    sink: SyslogSink
    sock: socket.socket
    head: bytes

    def finish(self, result_slot: bytes) -> None:
        try:
            self.sink._send(self.sock, self.head + result_slot.rstrip() + b"}")
        finally:
            self.abandon()

    def abandon(self) -> None:
        self.sock.close()


__all__ = ["SYSLOG_ADDRESS", "AuditWriteError", "FileSink", "Pending", "Sink", "SyslogSink"]
