"""The web console in Debian's Chromium against a real ``iotdb serve``, with data published over MQTT (paho).

Every check reads what the page shows or holds (its tables, its charts' data); screenshots are saved in
``tests/console/artifacts/``.
"""

from __future__ import annotations

import json
import threading

import pytest

from iotdb_core.testing.server import ServerProcess

from .conftest import Browser, Publisher, rest

DEVICE = "root.console.plant"


def _row(timestamp: int, value: float) -> bytes:
    return json.dumps({"device": DEVICE, "timestamp": timestamp, "measurements": ["temperature"],
                       "values": [value]}).encode()


def test_log_in_and_watch_the_counters_move(console_server: ServerProcess, page: Browser) -> None:
    refused = page.do("login", user="root", password="wrong")
    assert not refused["loggedIn"] and "wrong user or password" in refused["error"]
    shown = page.do("login", user="root", password="root")
    assert shown["loggedIn"] and shown["who"] == "root"
    assert shown["nav"] == ["Overview", "Clients", "Data explorer", "SQL", "Dead letters", "Live topics", "Users"]
    publisher = Publisher(console_server, "overview-sensor")
    stop = threading.Event()

    def publish() -> None:
        stamp = 1_700_000_000_000
        while not stop.is_set():
            publisher.publish("plant/temperature", [_row(stamp + i, 20.0 + i) for i in range(20)])
            stamp += 20
            stop.wait(0.2)

    feeder = threading.Thread(target=publish)
    feeder.start()
    try:
        seen = page.do("overviewUntil", publishes=100, samples=5)
    finally:
        stop.set()
        feeder.join()
    counters = seen["overview"]["counters"]
    assert counters["mqtt_publishes_received"] >= 100
    assert counters["points_written"] >= 100
    assert max(seen["charts"]["overview-publishes"]["values"]) > 0
    assert max(seen["charts"]["overview-points"]["values"]) > 0
    assert seen["charts"]["overview-clients"]["values"][-1] >= 1
    engine = seen["overview"]["engine"]
    assert engine["wal_segments"] >= 1 and engine["disk_free"] > 0
    assert "GiB" in seen["shown"]["diskFree"] or "MiB" in seen["shown"]["diskFree"]
    page.do("screenshot", name="overview")
    publisher.close()


def _bytes(n: float) -> str:
    """The page's byte format (format.js ``bytes``)."""
    units, unit = ["B", "KiB", "MiB", "GiB", "TiB"], 0
    while n >= 1024 and unit < len(units) - 1:
        n /= 1024
        unit += 1
    return f"{n:.{1 if unit else 0}f} {units[unit]}"


def test_the_engine_panel_follows_memtables_and_the_wal(console_server: ServerProcess, page: Browser) -> None:
    page.do("login", user="root", password="root")
    page.do("loadOverview")
    before = page.do("engineUntil", field="memtable_bytes")
    assert before["shown"]["engine-state"] == "Writable" and before["alert"] is None
    engine = before["engine"]
    assert before["shown"]["memtable"] == f"{_bytes(engine['memtable_bytes'])}, {engine['memtable_points']:,} points"
    assert before["shown"]["wal"] == f"{engine['wal_segments']:,} segment(s), {_bytes(engine['wal_bytes'])}"
    assert before["shown"]["flushes"].startswith(f"{engine['flushes']['running']} running, ")
    assert before["shown"]["compactions"].startswith(f"{engine['compactions']['running']} running, ")

    publisher = Publisher(console_server, "engine-sensor")
    try:  # new series: the memtable grows by their buffers, the WAL by their records
        publisher.publish("plant/engine", [json.dumps({
            "device": "root.console.engine", "timestamps": list(range(1000 * i, 1000 * i + 500)),
            "measurements": ["a", "b", "c"], "values": [[t, t * 0.5, t % 2 == 0] for t in range(500)],
        }).encode() for i in range(4)])
    finally:
        publisher.close()
    after = page.do("engineUntil", field="memtable_points", above=engine["memtable_points"] + 6000 - 1)
    grown = after["engine"]
    assert grown["memtable_points"] == engine["memtable_points"] + 6000  # the default interval flushes nothing now
    assert grown["memtable_bytes"] > engine["memtable_bytes"] and grown["wal_bytes"] > engine["wal_bytes"]
    assert after["shown"]["memtable"] != before["shown"]["memtable"]
    assert after["shown"]["memtable"] == f"{_bytes(grown['memtable_bytes'])}, {grown['memtable_points']:,} points"
    assert after["shown"]["wal"] == f"{grown['wal_segments']:,} segment(s), {_bytes(grown['wal_bytes'])}"
    assert [row[0] for row in after["levels"]] == [f"L{level['level']}" for level in grown["tsfile_levels"]]
    assert after["tsfiles"] == f"{grown['tsfiles']:,} file(s), {_bytes(grown['tsfile_bytes'])}"


def test_clients_page_lists_and_disconnects_a_client(console_server: ServerProcess, page: Browser) -> None:
    page.do("login", user="root", password="root")
    publisher = Publisher(console_server, "line-7-gateway")
    try:
        rows = page.do("clients", wait_for="line-7-gateway")
        row = next(r for r in rows if r[0] == "line-7-gateway")
        assert row[1] == "root" and row[2].startswith("127.0.0.1:") and row[3] == "MQTT 3.1.1" and row[4] == "30"
        page.do("screenshot", name="clients")
        assert "Disconnected line-7-gateway" in page.do("disconnect", client_id="line-7-gateway")
        assert publisher.disconnected.wait(10), "the client was not disconnected"
    finally:
        publisher.close()


def test_explorer_plots_a_series_published_over_mqtt(console_server: ServerProcess, page: Browser) -> None:
    publisher = Publisher(console_server, "explorer-sensor")
    start = 1_750_000_000_000
    values = [round(10 + (i % 17) * 0.5, 1) for i in range(300)]
    publisher.publish("plant/pressure", [
        json.dumps({"device": "root.console.press", "timestamp": start + i * 1000, "measurements": ["bar"],
                    "values": [value]}).encode() for i, value in enumerate(values)])
    publisher.close()
    page.do("login", user="root", password="root")
    assert "root.console.press.bar" in page.do("tree")
    shown = page.do("plot", device_label="press", measurement="bar")
    plot = shown["plot"]
    assert plot["mode"] == "raw" and plot["count"] == 300
    assert plot["timestamps"] == [start + i * 1000 for i in range(300)]
    assert plot["values"] == values
    assert "300 points" in shown["meta"] and "DOUBLE" in shown["meta"]
    zoomed = page.do("zoomIn")
    assert start < zoomed["first"] and zoomed["last"] < start + 299_000 and zoomed["count"] < 300
    page.do("screenshot", name="explorer")


def test_explorer_downsamples_a_large_series(console_server: ServerProcess, page: Browser) -> None:
    points = 200_000
    for offset in range(0, points, 50_000):
        status, body = rest(console_server, "/rest/v2/insertTablet", {
            "device": "root.console.big", "timestamps": list(range(offset, offset + 50_000)),
            "measurements": ["wave"], "data_types": ["DOUBLE"],
            "values": [[float(i % 1000) for i in range(offset, offset + 50_000)]]})
        assert status == 200 and body["code"] == 200, body
    page.do("login", user="root", password="root")
    page.do("tree")
    plot = page.do("plot", device_label="big", measurement="wave")["plot"]
    assert plot["mode"] == "windows" and plot["count"] == points
    assert 100 <= plot["points"] <= 4000
    assert min(plot["min"]) == 0.0 and max(plot["max"]) == 999.0
    assert plot["timestamps"][0] == 0
    # The windows are exact: each holds the points of [start, start + interval), the chart draws what they say.
    interval = plot["interval"]
    expected = [[float(i % 1000) for i in range(start, min(start + interval, points))] for start in plot["timestamps"]]
    assert plot["counts"] == [len(inside) for inside in expected] and sum(plot["counts"]) == points
    assert plot["min"] == [min(inside) for inside in expected] and plot["max"] == [max(inside) for inside in expected]
    assert plot["values"] == pytest.approx([sum(inside) / len(inside) for inside in expected], abs=1e-9)


def test_sql_page_runs_statements_pages_charts_and_downloads(console_server: ServerProcess, page: Browser) -> None:
    for i in range(250):
        rest(console_server, "/rest/v2/nonQuery",
             {"sql": f"INSERT INTO root.console.sqldev(time, a, b) VALUES ({1000 + i}, {i}, {i * 0.5})"})
    page.do("login", user="root", password="root")
    shown = page.do("sql", sql="SELECT a, b FROM root.console.sqldev")
    assert shown["body"]["code"] == 200 and shown["body"]["rows"] == 250
    assert shown["header"] == ["Time", "root.console.sqldev.a", "root.console.sqldev.b"]
    assert len(shown["rows"]) == 100 and shown["rows"][0][1:] == ["0", "0"]
    assert shown["pageLabel"] == "Page 1 of 3 (250 rows)"
    assert shown["chartShown"] and shown["chartPoints"] == 250
    assert page.do("nextPage") == "Page 2 of 3 (250 rows)"
    csv = page.do("csv").splitlines()
    assert csv[0] == "Time,root.console.sqldev.a,root.console.sqldev.b"
    assert csv[1] == "1000,0,0" and csv[250] == "1249,249,124.5" and len(csv) == 251
    page.do("screenshot", name="sql", full=False)
    wrong = page.do("sql", sql="SELECT a FROM root.console.sqldev WHERE")
    assert wrong["body"]["code"] == 700 and wrong["body"]["line"] == 1
    column = wrong["body"]["column"]
    assert wrong["caret"].splitlines()[1] == " " * (column - 1) + "^"
    assert "line 1, column" in wrong["outcome"]
    history = page.do("history")
    assert history[:2] == ["SELECT a FROM root.console.sqldev WHERE", "SELECT a, b FROM root.console.sqldev"]


def test_a_bad_publish_becomes_a_dead_letter_that_is_fixed_and_stored(console_server: ServerProcess,
                                                                       page: Browser) -> None:
    publisher = Publisher(console_server, "broken-sensor")
    publisher.publish("plant/broken", [b'{"device": "root.console.fixed", "timestamp": 5, "measurements": ["t"], '
                                       b'"values": [1.5]'])  # a closing brace short
    publisher.publish("plant/broken", [b"not json at all"])
    publisher.close()
    page.do("login", user="root", password="root")
    listed = page.do("deadLetters", filter="broken-sensor", wait_for="plant/broken")
    assert len(listed["rows"]) == 2 and all(row[1] == "broken-sensor" for row in listed["rows"])
    page.do("screenshot", name="deadletters")
    fixed = page.do("reingest", index=1, payload='{"device": "root.console.fixed", "timestamp": 5, '
                                                  '"measurements": ["t"], "values": [1.5]}')
    assert fixed["cls"] == "ok" and "Stored 1 point(s)" in fixed["message"], fixed
    status, body = rest(console_server, "/rest/v2/query", {"sql": "SELECT t FROM root.console.fixed"})
    assert status == 200 and body["timestamps"] == [5] and body["values"] == [[1.5]]
    still = page.do("reingest", index=0, payload="still not json")
    assert still["cls"] == "error" and "formatter still rejects" in still["message"]
    assert page.do("discard", index=0) == "Discarded."
    assert page.do("deadLetters", filter="broken-sensor")["rows"] == []


def test_changing_a_password_refuses_the_old_one_over_rest(console_server: ServerProcess, page: Browser) -> None:
    page.do("login", user="root", password="root")
    assert "root" in page.do("users")
    page.do("addUser", name="operator", password="first-secret")
    assert rest(console_server, "/rest/v2/query", {"sql": "SHOW DATABASES"},
                user="operator", password="first-secret")[0] == 200
    changed = page.do("changePassword", name="operator", password="second-secret")
    assert changed["cls"] == "ok", changed
    assert rest(console_server, "/rest/v2/query", {"sql": "SHOW DATABASES"},
                user="operator", password="first-secret")[0] == 401
    assert rest(console_server, "/rest/v2/query", {"sql": "SHOW DATABASES"},
                user="operator", password="second-secret")[0] == 200
    page.do("screenshot", name="users")
    page.do("deleteUser", name="operator")
    assert rest(console_server, "/rest/v2/query", {"sql": "SHOW DATABASES"},
                user="operator", password="second-secret")[0] == 401
    page.do("fresh")
    refused = page.do("login", user="operator", password="second-secret")
    assert not refused["loggedIn"]


def test_keyboard_labels_and_a_phone_sized_window(console_server: ServerProcess, page: Browser) -> None:
    page.do("login", user="root", password="root")
    page.do("loadOverview")
    walked = page.do("keyboardNavigation", tabs=2)
    assert walked["order"] == ["Skip to content", "Overview", "Clients"]
    assert walked["focused"] == "H1:Clients"
    for name in ("overview", "clients", "explorer", "sql", "deadletters", "topics", "users"):
        page.do("goto", hash=name)
        assert page.do("layout")["unlabelled"] == [], name
    page.do("fresh", width=390, height=844)
    page.do("login", user="root", password="root")
    page.do("loadOverview")
    layout = page.do("layout")
    assert layout["scrollWidth"] <= layout["width"], layout
    page.do("screenshot", name="overview-phone")
    page.do("tree")
    layout = page.do("layout")
    assert layout["scrollWidth"] <= layout["width"], layout
