"""The status page's Python side: the dumps the CLI notes in the edge's volume for it (what of a
dump goes there, how many stay, and that a missing edge fails nothing), and the page itself
(static files that load nothing from elsewhere)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from deployer.core import history, masking, scripts
from deployer.errors import EngineError

PAGE = Path(__file__).resolve().parents[2] / "deployer" / "assets" / "edge" / "page"

ROW = {  # the agent's row of a dump (core/dumpstate.row)
    "name": "app-20261207T113000Z",
    "database": "app",
    "created": "2026-12-07T11:30:00Z",
    "age": "2m",
    "size": 12345,
    "size_text": "12.1 KB",
    "label": "pre-release v2 pw=hunter2-secret",
    "state": "verified",
    "ok": True,
    "verified": "verified 2m ago (full)",
    "problem": "",
    "checked": "2026-12-07T11:30:05Z",
    "check_kind": "full",
    "sha256": "ab" * 32,
    "server_version": "17.2",
    "pgvector_version": "0.8.0",
}


def test_a_dump_note_keeps_the_pages_fields_only_and_masks_them():
    masking.register("hunter2-secret")
    try:
        note = json.loads(history.dump_note(ROW))
    finally:
        masking.forget()
    assert set(note) == set(history.DUMP_FIELDS)
    assert note["label"] == "pre-release v2 pw=*****"
    assert note["state"] == "verified" and note["size_text"] == "12.1 KB"
    assert "sha256" not in note and "\n" not in history.dump_note(ROW)


def test_the_edge_keeps_the_last_notes_whole(tmp_path):
    """The script, run by sh against a folder of its own: the newest DUMPS_KEPT lines stay, each
    one as it was given (quotes and all), and the file is readable by nginx's workers."""
    path = tmp_path / "dumps.jsonl"
    for i in range(scripts.DUMPS_KEPT + 5):
        line = json.dumps({"name": f"d{i}", "label": 'it\'s "quoted" $HOME `x`'})
        script = scripts.note_dump(line).replace(scripts.DUMPS, str(path))
        subprocess.run(["sh", "-c", script], check=True)
    lines = path.read_text().splitlines()
    assert [json.loads(x)["name"] for x in lines] == [f"d{i}" for i in range(5, scripts.DUMPS_KEPT + 5)]
    assert json.loads(lines[-1])["label"] == 'it\'s "quoted" $HOME `x`'
    assert path.stat().st_mode & 0o777 == 0o644


class _Edge:
    def __init__(self, fail: bool) -> None:
        self.fail, self.notes = fail, []

    def note_dump(self, line: str, *, step: str) -> None:
        if self.fail:
            raise EngineError("no such container", step=step)
        self.notes.append(json.loads(line))


class _Ctx:
    def __init__(self, fail: bool = False) -> None:
        self.edge = _Edge(fail)


def test_the_cli_notes_a_dump_it_took_and_a_missing_edge_fails_nothing():
    from deployer.flows import backups

    ctx = _Ctx()
    backups.note(ctx, ROW, step="backup")
    backups.note(ctx, {"report": []}, step="verify")  # no dump named: nothing
    backups.note(ctx, None, step="verify")
    assert [n["name"] for n in ctx.edge.notes] == [ROW["name"]]
    backups.note(_Ctx(fail=True), ROW, step="backup")  # before `up`: no edge, no page


def test_the_page_is_static_and_loads_nothing_from_elsewhere():
    html = (PAGE / "index.html").read_text()
    assert re.findall(r'(?:src|href)="([^"]+)"', html) == ["page.css", "page.js"]
    assert "default-src 'self'" in html
    for name in ("index.html", "page.js", "page.css"):
        text = (PAGE / name).read_text()
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), name  # no CDN, no host
    script = (PAGE / "page.js").read_text()
    assert "innerHTML" not in script  # the edge's text goes in as text
    assert 'fetch(u, { cache: "no-store" })' in script and '["series.json", "status.json"]' in script


def test_the_page_is_served_on_the_admin_server_only():
    from types import SimpleNamespace

    from deployer.assets import asset
    from deployer.config.model import Edge
    from deployer.core import site

    text = site.render(SimpleNamespace(name="shop", edge=Edge(), swarm=None), asset("edge", "site.conf.j2"))
    servers = text.split("\nserver {")[1:]
    preview = [s for s in servers if "server_name _;" in s and "$deployer_admin_refused" in s]
    assert len(preview) == 1
    for path in ("= /_deployer/page/series.json", "= /_deployer/page/status.json", "/_deployer/page/ {"):
        assert sum(f"location {path}" in s for s in servers) == 1 and f"location {path}" in preview[0], path
    assert "alias /etc/nginx/deployer/page/;" in preview[0]
