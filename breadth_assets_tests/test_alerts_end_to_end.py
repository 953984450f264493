"""Alerts through a real daemon: `dagster-daemon` runs `alert_sensor`, which sends the breadth
signals the main job wrote to a local HTTP server (apprise's `json://`), one message per day and
group, once; a recomputed day sends nothing again; the token in the URL is in no log."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pandas as pd
import pytest

from breadth_assets.calendars import trading_days
from breadth_assets.defs.sensors.alert_sensor import LOOKBACK_DAYS
from breadth_assets_tests.support import write_universe
from breadth_assets_tests.support_deployment import (
    BIN,
    PROJECT_ROOT,
    Deployment,
    start_dagster,
    stop_process,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Using variable_values:DeprecationWarning"),
]
TOKEN = "t0ken-0f-the-target"
TICKERS = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT", "GOLF", "HOTEL"]


class _Target(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def _main_job(deployment: Deployment, *extra: str) -> None:
    command = [str(BIN / "breadth-assets"), "run", "--tail", "0", *extra]
    done = subprocess.run(command, env=deployment.env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def _serve(port: int = 0) -> HTTPServer:
    server = HTTPServer(("127.0.0.1", port), _Target)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


SERVERS: list[HTTPServer] = []


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Iterator[Deployment]:
    server = _serve()
    SERVERS.append(server)
    folder = tmp_path_factory.mktemp("alerts_e2e")
    home = folder / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_bytes(
        (PROJECT_ROOT / "dagster_home" / "dagster.yaml").read_bytes()
    )
    today = dt.datetime.now(dt.UTC).date()
    start = trading_days("DEMO", today - dt.timedelta(days=200), today)[-100].date()
    universe = write_universe(folder, TICKERS, start=start.isoformat())
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "BREADTH_UNIVERSE": str(universe),
        "BREADTH_DUCKDB_PATH": str(folder / "breadth.duckdb"),
        "BREADTH_ALERT_URLS": f"json://alerts:{TOKEN}@127.0.0.1:{server.server_port}/breadth",
        "BREADTH_ALERT_RETRY_SECONDS": "5",
    }
    logs = {"dagster-daemon": folder / "daemon.log", "dagster-webserver": folder / "webserver.log"}
    deployment = Deployment(env=env, folder=folder, logs=logs)
    _main_job(deployment)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
        try:
            start_dagster(deployment)
            yield deployment
        finally:
            for process in deployment.processes.values():
                stop_process(process)
            SERVERS[-1].shutdown()


def _expected(deployment: Deployment) -> dict[str, list[str]]:
    """The signals the store holds within the sensor's look-back, by day and group."""
    store = deployment.store
    latest = store.read_breadth()["date"].max()
    start = (latest - pd.Timedelta(days=LOOKBACK_DAYS)).date()
    signals = store.read_breadth_signals(start=start)
    return {
        f"breadth {group} {day:%Y-%m-%d}": sorted(rows["signal"])
        for (day, group), rows in signals.groupby(["date", "group_name"])
    }


def test_each_day_and_group_with_signals_gets_one_message_once(deployment):
    expected = _expected(deployment)
    assert expected, "the demo's last days fire no signal: choose another history"

    def probe() -> tuple[bool, int]:
        return len(_Target.received) >= len(expected), len(_Target.received)

    deployment.wait_for("the alert messages", probe, 180)
    got = {}
    for message in _Target.received:
        head, names = message["title"].split(": ")
        got[head] = sorted(names.split(", "))
    assert got == expected
    assert len(_Target.received) == len(expected)


def test_recomputed_days_are_not_sent_again_and_a_new_groups_wait_for_the_target(deployment):
    """Every day recomputed (`--full`) with a new group added while the target is down: once it
    is back, the new group's messages arrive once and no earlier day's again."""
    down = SERVERS[-1]
    port = down.server_port
    down.shutdown()
    down.server_close()
    sent = len(_Target.received)
    universe = deployment.universe_path
    universe.write_text(
        universe.read_text() + "groups:\n  FIRST4: [ALPHA, BRAVO, CHARLIE, DELTA]\n"
    )
    _main_job(deployment, "--full")
    new = {key: names for key, names in _expected(deployment).items() if "FIRST4" in key}
    assert new, "the new group fires no signal in the look-back: choose other members"
    time.sleep(20)  # the sensor (every 15 s) tries while the target is down
    assert len(_Target.received) == sent

    SERVERS.append(_serve(port))

    def probe() -> tuple[bool, int]:
        return len(_Target.received) >= sent + len(new), len(_Target.received)

    deployment.wait_for("the messages once the target is back", probe, 240)
    time.sleep(16)  # another tick: nothing more comes
    titles = [m["title"].split(": ")[0] for m in _Target.received[sent:]]
    assert sorted(titles) == sorted(new)


def test_the_token_is_in_no_log_and_no_stored_file(deployment):
    deployment.check_alive()
    for path in deployment.logs.values():
        assert TOKEN not in path.read_text()
    stored = [path for path in deployment.folder.rglob("*") if path.is_file()]
    assert any(path.suffix == ".db" for path in stored)  # the runs, events and sensor ticks
    leaked = [path.name for path in stored if TOKEN.encode() in path.read_bytes()]
    assert leaked == []
