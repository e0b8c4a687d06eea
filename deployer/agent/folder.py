"""The dumps folder (/backups in the backup container) is the catalogue: nothing is cached,
every call reads the folder.

Writers serialise on `.deployer.lock` (flock) for the short moments that change names:
reserving a new name, the final rename, deleting, rewriting a metadata file. A dump
being written is `.NAME.dump.partial`, flock-ed by its writer for as long as it writes:
a partial nobody holds was left by a killed process, and the next writer removes it,
along with sidecar files whose dump is gone.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from deployer.core import dumps, dumpstate
from deployer.core.dumps import Identity, Metadata
from deployer.core.dumpstate import Found, Judged
from deployer.core.steps import Step
from deployer.errors import BackupError, InputError

LOCK = ".deployer.lock"
TMP_AGE = 600  # seconds after which a leftover temporary file is garbage
READ_LIMIT = 1 << 20  # a sidecar is small; anything bigger is damage, not a sidecar


def identity(path: Path) -> Identity | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return Identity(st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _text(path: Path) -> str | None:
    try:
        with path.open("rb") as fh:
            return fh.read(READ_LIMIT).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError:
        return ""  # unreadable: judged as garbled


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _held_by_someone(path: Path) -> bool:
    """True while a live writer holds the partial's lock."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return True
        # no flock on this filesystem: judge by age
        return time.time() - os.fstat(fd).st_mtime < 3600
    finally:
        os.close(fd)
    return False


class Folder:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def file(self, name: str, kind: str) -> Path:
        return self.path / dumps.files(name)[kind]

    # -- reading ------------------------------------------------------------------------
    def _listing(self) -> list[str]:
        try:
            return os.listdir(self.path)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise BackupError(f"cannot read the dumps folder {self.path}: {exc.strerror}", step=Step.LIST) from None

    def names(self) -> set[str]:
        """Every dump name any file of the folder uses (complete, damaged, or being written)."""
        return {n for n in (dumps.name_of(f) for f in self._listing()) if n}

    def writing(self) -> list[str]:
        """Dumps being written now (their writer holds the partial)."""
        return sorted(
            n
            for f in self._listing()
            if f.endswith(dumps.PARTIAL) and (n := dumps.name_of(f)) and _held_by_someone(self.path / f)
        )

    def found(self, name: str) -> Found:
        return Found(
            name,
            identity(self.file(name, "dump")),
            _text(self.file(name, "sha")),
            _text(self.file(name, "meta")),
        )

    def judged(self, now: datetime) -> list[Judged]:
        """Every dump, damaged ones included, oldest first. Sidecars of a dump being
        written are not a dump yet."""
        listing = set(self._listing())
        names = {n for f in listing if (n := dumps.name_of(f)) and not f.endswith(dumps.PARTIAL)}
        busy = set(self.writing())
        out = [
            dumpstate.judge(self.found(n), now)
            for n in names
            if not (n in busy and dumps.files(n)["dump"] not in listing)
        ]
        return sorted(out, key=lambda j: (j.created, j.name))

    def get(self, name: str, now: datetime, *, recheck: bool = False) -> Judged:
        try:
            dumps.check_name(name)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        found = self.found(name)
        if found.dump is None and found.sha is None and found.meta is None:
            raise InputError(f"no dump named {name} (see `deployer backup list`)")
        return dumpstate.judge(found, now, recheck=recheck)

    def free_bytes(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    # -- writing ------------------------------------------------------------------------
    @contextmanager
    def lock(self) -> Iterator[None]:
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def write_atomic(self, path: Path, text: str) -> None:
        """Temporary file, fsync, rename, fsync the folder: the old or the new content, never half."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            fsync_dir(self.path)
        finally:
            tmp.unlink(missing_ok=True)

    @contextmanager
    def partial(self, now: datetime) -> Iterator[tuple[str, BinaryIO]]:
        """Reserve a new name and open its partial file, locked; removed on any failure."""
        with self.lock():
            name = dumps.new_name(now, self.names())
            path = self.file(name, "partial")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            with os.fdopen(fd, "wb") as fh:
                yield name, fh
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    def publish(self, name: str, meta: Metadata) -> None:
        """Write the sidecars, then rename the partial into place (the writer holds it)."""
        final = self.file(name, "dump")
        with self.lock():
            if final.exists() or self.file(name, "meta").exists():
                raise BackupError(
                    f"a dump named {name} appeared while it was written: kept the other one", step=Step.DUMP
                )
            try:
                self.write_atomic(self.file(name, "sha"), dumps.sha_line(name, meta.sha256))
                self.write_atomic(self.file(name, "meta"), meta.to_json())
                os.rename(self.file(name, "partial"), final)
                fsync_dir(self.path)
            except BaseException:
                if not final.exists():
                    for kind in ("sha", "meta"):
                        self.file(name, kind).unlink(missing_ok=True)
                raise

    def record(self, name: str, check: dumps.Check) -> Metadata | None:
        """Append a check to a dump's metadata; None when the metadata cannot hold one (damaged)."""
        with self.lock():
            text = _text(self.file(name, "meta"))
            try:
                meta = Metadata.from_json(text or "")
            except ValueError:
                return None
            meta = meta.with_check(check)
            self.write_atomic(self.file(name, "meta"), meta.to_json())
            return meta

    def rebuild(self, name: str, meta: Metadata, *, step: str) -> None:
        """Write the metadata (and the checksum file, if it is missing too) of a dump whose
        metadata was deleted, from a full check of the dump itself."""
        with self.lock():
            if self.file(name, "meta").exists() or not self.file(name, "dump").exists():
                raise BackupError(f"{name} changed while it was checked: check it again", step=step)
            if not self.file(name, "sha").exists():
                self.write_atomic(self.file(name, "sha"), dumps.sha_line(name, meta.sha256))
            self.write_atomic(self.file(name, "meta"), meta.to_json())

    def delete(self, name: str) -> None:
        """The dump first, so a half-deleted dump is never listed as a good one; then its sidecars."""
        with self.lock():
            for kind in ("dump", "sha", "meta"):
                self.file(name, kind).unlink(missing_ok=True)
            fsync_dir(self.path)

    # -- leftovers of killed commands -----------------------------------------------------
    def leftovers(self) -> list[Path]:
        """Partials nobody writes, sidecars whose dump and partial are gone, old temporary files."""
        listing = set(self._listing())
        stale = {
            f for f in listing if f.endswith(dumps.PARTIAL) and dumps.name_of(f) and not _held_by_someone(self.path / f)
        }
        out = [self.path / f for f in sorted(stale)]
        now = time.time()
        for f in sorted(listing):
            path = self.path / f
            name = dumps.name_of(f)
            if name and (f.endswith(dumps.SHA) or f.endswith(dumps.META)):
                files = dumps.files(name)
                if files["dump"] not in listing and (files["partial"] not in listing or files["partial"] in stale):
                    out.append(path)
            elif f.startswith(".") and f.endswith(".tmp"):
                try:
                    if now - path.stat().st_mtime > TMP_AGE:
                        out.append(path)
                except FileNotFoundError:
                    pass
        return out

    def clean(self) -> list[str]:
        """Remove the leftovers; returns their file names."""
        removed = []
        with self.lock():
            for path in self.leftovers():
                try:
                    path.unlink()
                    removed.append(path.name)
                except FileNotFoundError:
                    pass
        return removed
