"""The pure rules of release safety: durations, the watch's verdict and marker, the
maintenance page's message, the prune plan, and the config's [watch], [notify], [disk],
migrate and db_login keys."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from deployer import config
from deployer.core import masking
from deployer.core.durations import bytes_text, parse_duration, parse_size, seconds_text
from deployer.core.maintenance import Maintenance, check_message
from deployer.core.state import Record, Target
from deployer.core.verdict import Baseline
from deployer.core.watch import Marker, parse_tick, tick_script
from deployer.errors import ConfigError, InputError
from deployer.flows.prune import plan

BASE = """
[project]
name = "shop"
[services.backend]
image = "shop-backend"
port = 8080
health = "/api/health"
routes = ["/api/"]
env_file = "backend.env"
[database]
env_file = "db.env"
"""


def load(tmp_path: Path, extra: str = "", service: str = "") -> config.Config:
    for name, text in (
        ("db.env", "POSTGRES_USER=app\nPOSTGRES_PASSWORD=pw-unit-1\n"),
        ("backend.env", "DB_USER=app\nDB_PASSWORD=pw-unit-2\nDATABASE_URL=postgres://app:pw-unit-3@db/app\n"),
    ):
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o600)
    path = tmp_path / "deployer.toml"
    path.write_text(
        BASE.replace('env_file = "backend.env"\n', 'env_file = "backend.env"\n' + service) + textwrap.dedent(extra)
    )
    return config.load(path)


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("90s", 90),
        ("3m", 180),
        ("500ms", 0.5),
        ("1h", 3600),
        ("0", 0),
        ("2.5s", 2.5),
        (45, 45),
        ("soon", None),
        ("-1s", None),
        ("3 m", None),
        ("\u0663m", None),  # an Arabic-Indic three: digits are ASCII only
        ("\uff11\uff10s", None),  # fullwidth 10
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_sizes_and_texts():
    assert parse_size("2g") == 2 << 30 and parse_size("500m") == 500 << 20 and parse_size("lots") is None
    assert parse_size("\uff12g") is None
    assert seconds_text(90) == "1m30s" and seconds_text(180) == "3m" and seconds_text(0.25) == "250ms"
    assert bytes_text(1536) == "1.5 kB" and bytes_text(None) == "-"


METRICS = """# window 60 seconds, in 5-second slots
deployer_window_requests_total{route="live",colour="green",release="aaaa1111",class="2xx"} 950
deployer_window_requests_total{route="live",colour="green",release="aaaa1111",class="5xx"} 50
deployer_window_requests_total{route="probe",colour="green",release="aaaa1111",class="5xx"} 400
deployer_window_requests_total{route="live",colour="blue",release="bbbb2222",class="5xx"} 999
deployer_window_request_duration_seconds_bucket{route="live",colour="green",release="aaaa1111",le="0.3"} 980
deployer_window_request_duration_seconds_bucket{route="live",colour="green",release="aaaa1111",le="0.5"} 985
deployer_window_request_duration_seconds_bucket{route="live",colour="green",release="aaaa1111",le="+Inf"} 1000
"""


def test_the_marker_round_trips_and_knows_a_dead_watcher():
    standby = Record("green", "cccc3333", "v1", (Target("backend", "backend-green-cccc3333", 8080, "/health"),))
    marker = Marker("green", "aaaa1111", "v2", "blue", "v1", 1000, 1180, 1000, "me@here pid 7", standby)
    again = Marker.parse(marker.render())
    assert again == marker and again.baseline is None
    measured = Marker(**{**marker.__dict__, "baseline": Baseline("bbbb2222", 600, 3, 0.0815, 58)})
    assert Marker.parse(measured.render()) == measured
    assert again.alive(1050) and not again.alive(1200) and again.left(1100) == 80 and again.left(2000) == 0
    assert Marker.parse("garbage") is None and Marker.parse(None) is None


def test_a_tick_is_one_script_and_parses_back():
    marker = Marker("green", "aaaa1111", "v2", "blue", "v1", 1000, 1180, 1000, "me")
    script = tick_script(marker, own=True, window=60, top=1, check=None, timeout=2)
    assert "metrics?window=60&top=1" in script and "sed -i" in script
    assert "sed -i" not in tick_script(marker, own=False, window=60, top=0, check=None, timeout=2)
    out = (
        "now 1234\n@@deployer-watch@@ metrics\n" + METRICS + "@@deployer-watch@@ state\n"
        "@@deployer-watch@@-state live\ngreen\n@@deployer-watch@@-state watch\n"
        + marker.render()
        + "@@deployer-watch@@ check\n"
    )
    tick = parse_tick(out)
    assert tick.now == 1234 and tick.state.live == "" and Marker.parse(tick.state.watch) == marker
    assert "deployer_window_requests_total" in tick.metrics


@pytest.mark.parametrize("message", ["Back at 11:00, sorry!", "Mise à jour — de retour à 11h.", "50% done (step 2/3)"])
def test_plain_messages_pass(message):
    assert check_message(message) == message


@pytest.mark.parametrize(
    "message", ["<b>x</b>", 'a "quote"', "Tom & Jerry", "it's", "a`b", "line\nbreak", "", "x" * 301]
)
def test_markup_is_refused(message):
    with pytest.raises(InputError):
        check_message(message)


def test_the_maintenance_file_round_trips():
    page = Maintenance("Back soon.", 120, "2026-01-01T00:00:00+0000", "me@here")
    assert Maintenance.parse(page.render()) == page
    assert Maintenance.parse(None) is None


def test_prune_keeps_the_newest_the_route_state_and_the_used():
    tags = [(f"app:v{i}", f"id{i}", 100 + i) for i in range(1, 8)]
    keep, remove = plan(tags, 3, protected={"v1"}, used={"id2"})
    assert keep == ["v7", "v6", "v5", "v2", "v1"]
    assert remove == ["app:v4", "app:v3"]
    same = [(f"app:v{i}", "one", 100) for i in range(1, 5)]  # one image under four tags
    assert plan(same, 2, set(), set()) == (["v4", "v3"], ["app:v2", "app:v1"])


def test_the_safety_defaults(tmp_path):
    c = load(tmp_path)
    assert (c.watch.window, c.watch.max_error_rate, c.watch.max_p99, c.watch.min_requests) == (180, 0.01, 0.5, 50)
    assert c.disk.keep_versions == 3 and c.disk.prune_after_release and c.notify.webhook is None
    assert c.services["backend"].migrate == () and c.services["backend"].db_login is None


def test_the_safety_keys(tmp_path):
    masking.forget()
    c = load(
        tmp_path,
        extra="""
        [watch]
        window = "90s"
        max_error_rate = 0.02
        max_p99 = "750ms"
        min_requests = 10
        check = "/api/health"
        [notify]
        webhook = "https://hooks.example.invalid/services/T000/B000/abcdefghijklmnop"
        command = ["./notify.sh", "--quiet"]
        [disk]
        keep_versions = 5
        min_free = "10g"
        """,
        service='migrate = ["./migrate", "up"]\ndb_login = { url = "DATABASE_URL" }\n',
    )
    assert (c.watch.window, c.watch.max_p99, c.watch.check) == (90, 0.75, "/api/health")
    assert c.notify.command == ("./notify.sh", "--quiet") and c.disk.min_free == 10 << 30
    assert c.backup.webhook == c.notify.webhook  # one URL for every event, the agent's too
    assert "abcdefghijklmnop" not in masking.mask(f"posting to {c.notify.webhook}")
    assert c.services["backend"].migrate == ("./migrate", "up") and c.services["backend"].db_login.url == "DATABASE_URL"


@pytest.mark.parametrize(
    "extra, service, key",
    [
        ('[watch]\nwindow = "soon"', "", "watch.window"),
        ("[watch]\nmax_error_rate = 2", "", "watch.max_error_rate"),
        ('[watch]\nmax_p99 = "1m"', "", "watch.max_p99"),
        ('[notify]\ncommand = "notify.sh"', "", "notify.command"),
        ('[disk]\nmin_free = "a lot"', "", "disk.min_free"),
        ('[disk]\nmin_free = "1.5"', "", "disk.min_free"),
        ('[disk]\nmin_free = ""', "", "disk.min_free"),
        ('[disk]\nmin_free = "b"', "", "disk.min_free"),
        ("", 'migrate = "./migrate up"\n', "services.backend.migrate"),
        ("", 'db_login = { user = "NOPE", password = "DB_PASSWORD" }\n', "services.backend.db_login.user"),
        (
            "",
            'db_login = { user = "DB_USER", password = "DB_PASSWORD", extra = "X" }\n',
            "services.backend.db_login.extra",
        ),
    ],
)
def test_bad_safety_keys_name_the_key(tmp_path, extra, service, key):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, extra=extra, service=service)
    assert f": {key}: " in str(info.value)
