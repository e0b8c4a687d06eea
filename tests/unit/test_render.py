"""`deployer status` as a person reads it: in 80 columns (a CI log), nothing cut short."""

from __future__ import annotations

from deployer.cli import render


def test_status_fits_80_columns_with_whole_times_in_utc(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    part = {"status": "running", "health": "healthy"}
    render.status(
        {
            "project": "shop",
            "engine": "the local engine",
            "live": "blue",
            "colours": {
                "blue": {
                    "role": "live",
                    "version": "v1",
                    "release": "9d102f50",
                    "services": {
                        "backend": {"status": "running", "health": "healthy", "restarts": 0, "memory": 60 * 2**20},
                        "frontend": {"status": "running", "health": "healthy", "restarts": 2, "memory": 50 * 2**20},
                    },
                    "traffic": {"rate": 4.2, "error_rate": 0.0, "p99_ms": 71.7},
                    "other_releases": [],
                },
                "green": {"role": "-", "version": None, "release": None, "services": {}, "other_releases": []},
            },
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
    row = lines.index(next(line for line in lines if line.startswith("blue")))
    assert lines[row].split() == ["blue", "live", "v1", "9d102f50", "backend", "running/healthy", "60", "MiB"]
    assert lines[row + 1].split() == ["frontend", "running/healthy", "↻2", "50", "MiB"]
    assert lines[row + 2].split() == ["green", "-", "-", "-", "-"]
    assert "last minute on blue: 4.2 req/s, 5xx 0.0%, p99 71.7 ms" in lines
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


def test_an_engine_older_than_28_is_a_warning_under_the_first_line(capsys, monkeypatch):
    from deployer.core import exposure

    monkeypatch.setenv("COLUMNS", "200")
    part = {"status": "running", "health": "healthy"}
    render.status(
        {
            "project": "shop",
            "engine": "the local engine",
            "live": None,
            "colours": {},
            "edge": dict(part),
            "database": dict(part),
            "backup_service": dict(part),
            "releases": [],
            "engine_warning": exposure.lan_warning({"the local engine": "20.10.24"}),
        }
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("warning: Docker Engine older than 28 (20.10.24 on the local engine): hosts on the same")


def test_status_shows_each_infra_image_age_in_one_order_and_warns_about_old_ones(capsys):
    from deployer.cli import render

    data = {
        "project": "shop", "engine": "the local engine", "live": "blue",
        "colours": {"blue": {"role": "live", "version": "v1", "release": "1a2b3c4d", "services": {}, "traffic": None}},
        "edge": {"status": "running", "health": "healthy"}, "database": {"status": "running", "health": "healthy"},
        "backup_service": {"status": "running", "health": "healthy"}, "releases": [],
        "images": {
            "db": {"image": "deployer-pgvector:a-b", "built": "2026-10-01 00:00", "age_days": 66, "old": True},
            "edge": {"image": "deployer-edge:a-b", "built": "2026-12-05 10:00", "age_days": 1, "old": False},
        },
        "images_warning": "built more than 30 days ago, so without the security fixes since: database (66 days): run "
        "`deployer up --refresh-images` (docs/security.md)",
    }  # fmt: skip
    render.status(data)
    out = capsys.readouterr().out
    assert "images: edge deployer-edge:a-b built 2026-12-05 10:00 UTC (1 day ago); database deployer-pgvector" in out
    assert "warning: images built more than 30 days ago" in out and "deployer up --refresh-images" in out
