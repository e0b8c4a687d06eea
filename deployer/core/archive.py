"""A tar archive built in memory: how files reach a container in the body of one Engine API
call (their content is in no argv, no environment and no `docker inspect`)."""

from __future__ import annotations

import io
import tarfile


def tar_of(files: dict[str, bytes], *, mode: int, now: float) -> bytes:
    """Files (relative paths) with `mode`, and the folders above them with 0700."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        folders: set[str] = set()
        for name, data in sorted(files.items()):
            parts = name.split("/")
            for i in range(1, len(parts)):
                sub = "/".join(parts[:i])
                if sub not in folders:
                    folders.add(sub)
                    info = tarfile.TarInfo(sub)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o700, now
                    tar.addfile(info)
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, now
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
