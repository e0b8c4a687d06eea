"""`deployer status` as a person reads it: in 80 columns (a CI log), nothing cut short."""

from __future__ import annotations

from deployer.cli import render


def test_the_history_fits_80_columns_with_whole_times_in_utc(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    part = {"status": "running", "health": "healthy"}
    render.status(
        {
            "project": "shop",
            "engine": "the local engine",
            "live": "blue",
            "colours": {},
            "edge": dict(part),
            "database": dict(part),
            "backup_service": dict(part),
            "backup": {"name": "dump-20261127T114330Z", "age": "33s ago", "verified": "verified 33s ago (read)"},
            "releases": [
                {
                    "time": "2026-11-27T12:43:27+0100",
                    "action": "release",
                    "outcome": "ok",
                    "version": "v1",
                    "colour": "blue",
                    "seconds": 9.22,
                    "by": "root@vm",
                    "images": {
                        "backend": "sha256:9a8fc6c3a723" + "0" * 52,
                        "frontend": "sha256:e8173339e11d" + "0" * 52,
                    },
                },
                {"time": "2026-11-27T11:44:00+0000", "action": "switch", "colour": "green", "by": "root@vm"},
            ],
        }
    )
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "last dump: dump-20261127T114330Z (33s ago, verified 33s ago (read))" in lines
    release = next(line for line in lines if line.startswith("2026-11-27 11:43:27"))
    assert release.split() == ["2026-11-27", "11:43:27", "release", "ok", "v1", "blue", "9.2s", "root@vm"]
    assert next(line for line in lines if line.startswith("2026-11-27 11:44:00")).split()[2:5] == [
        "switch",
        "ok",
        "green",
    ]
    assert "images of v1 (2026-11-27 11:43:27): backend 9a8fc6c3a723 frontend e8173339e11d" in lines
    assert "…" not in out
    assert all(len(line) <= 80 for line in lines if not line.startswith("images of"))
