"""The in-memory tar archive that carries files into a container (TLS keys, the edge's files)."""

import io
import tarfile

from deployer.core.archive import tar_of


def test_files_keep_their_mode_and_the_folders_above_them_are_private():
    data = tar_of({"tls/live/key.pem": b"secret", "tls/cert.pem": b"cert"}, mode=0o600, now=1_700_000_000)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert list(members) == ["tls", "tls/cert.pem", "tls/live", "tls/live/key.pem"]
        assert [members[d].isdir() and members[d].mode for d in ("tls", "tls/live")] == [0o700, 0o700]
        assert members["tls/live/key.pem"].mode == 0o600 and members["tls/live/key.pem"].mtime == 1_700_000_000
        assert tar.extractfile("tls/live/key.pem").read() == b"secret"


def test_no_files_is_an_empty_archive():
    with tarfile.open(fileobj=io.BytesIO(tar_of({}, mode=0o644, now=0))) as tar:
        assert tar.getmembers() == []
