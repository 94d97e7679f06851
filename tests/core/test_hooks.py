"""Every hook specification is called by the real components, and documented.

``Recorder`` implements every hook; the meta-tests fail when a specification is added without a
test here or without a section in docs/plugins.md.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from iotdb_core import FlushInfo, FormatContext, Option, Row, hookimpl, hookspecs
from iotdb_core.bootstrap import configure, open_engine
from iotdb_core.config import integer
from iotdb_core.metrics import MetricFigure, ServiceCounters, plugin_figures
from iotdb_core.rest.metrics import render
from iotdb_core.storage.engine import Engine

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
SPEC_NAMES = sorted(name for name in dir(hookspecs) if name.startswith("iotdb_"))


class Recorder:
    """Implements every hook and records the calls."""

    def __init__(self) -> None:
        self.calls: dict[str, list[dict[str, Any]]] = {}

    def record(self, name: str, **kwargs: Any) -> None:
        self.calls.setdefault(name, []).append(kwargs)

    @hookimpl
    def iotdb_config_options(self) -> list[Option]:
        self.record("iotdb_config_options")
        return [Option("recorder_limit", 3, integer(0), "a non-negative integer", "test option")]

    @hookimpl
    def iotdb_configure(self, settings: Any, plugins: Any) -> None:
        self.record("iotdb_configure", limit=settings["recorder_limit"], plugins=plugins)

    @hookimpl
    def iotdb_metrics(self) -> list[MetricFigure]:
        self.record("iotdb_metrics")
        return [MetricFigure("recorder_calls", len(self.calls), "hook calls so far", "counter", (("who", "rec"),))]

    @hookimpl(wrapper=True)
    def iotdb_format_payload(self, topic: str, payload: bytes, context: FormatContext):  # type: ignore[no-untyped-def]
        self.record("iotdb_format_payload", topic=topic, context=context)
        rows = yield
        return rows

    @hookimpl
    def iotdb_before_write(self, rows: list[Row], settings: Any) -> None:
        self.record("iotdb_before_write", devices=[row.device for row in rows])
        rows[:] = [row for row in rows if row.device != "root.sg.dropped"]

    @hookimpl
    def iotdb_after_write(self, rows: list[Row], result: Any) -> None:
        self.record("iotdb_after_write", devices=[row.device for row in rows], points=result.points_written)

    @hookimpl
    def iotdb_after_flush(self, info: FlushInfo) -> None:
        self.record("iotdb_after_flush", info=info)

    @hookimpl
    def iotdb_startup(self, engine: Any, settings: Any) -> None:
        self.record("iotdb_startup", engine=engine)

    @hookimpl
    def iotdb_shutdown(self, engine: Any) -> None:
        self.record("iotdb_shutdown", engine=engine)

    @hookimpl
    def iotdb_storage_backend(self, data_dir: Path, settings: Any) -> Any:
        self.record("iotdb_storage_backend", data_dir=data_dir)
        return None


def test_every_hook_is_called_by_the_real_components(tmp_path: Path) -> None:
    recorder = Recorder()
    conf = tmp_path / "iotdb-system.properties"
    conf.write_text(f"data_dir={tmp_path / 'data'}\nrecorder_limit=7\n")
    runtime = configure(conf, plugins=[recorder], environ={}, load_entry_points=False)
    assert runtime.settings["recorder_limit"] == 7
    assert recorder.calls["iotdb_config_options"]
    assert recorder.calls["iotdb_configure"] == [{"limit": 7, "plugins": runtime.plugins}]
    text = render(ServiceCounters(), plugins=plugin_figures(runtime.plugins))  # what GET /metrics serves
    assert recorder.calls["iotdb_metrics"] == [{}]
    assert "# TYPE iotdb_recorder_calls counter" in text and 'iotdb_recorder_calls{who="rec"} 3' in text

    payload = b'{"device": "root.sg.d1", "timestamp": 10, "measurements": ["s1"], "values": [2.5]}'
    context = FormatContext(client_id="dev1", username="root", qos=1)
    rows = runtime.plugins.hook.iotdb_format_payload(topic="root/sg", payload=payload, context=context)
    assert rows == [Row("root.sg.d1", 10, ("s1",), (2.5,))]
    assert recorder.calls["iotdb_format_payload"] == [{"topic": "root/sg", "context": context}]

    engine = open_engine(runtime)
    assert recorder.calls["iotdb_storage_backend"] == [{"data_dir": tmp_path / "data"}]
    assert recorder.calls["iotdb_startup"] == [{"engine": engine}]
    try:
        result = engine.write_rows([*rows, Row("root.sg.dropped", 10, ("s1",), (1.0,))])
        assert recorder.calls["iotdb_before_write"] == [{"devices": ["root.sg.d1", "root.sg.dropped"]}]
        assert recorder.calls["iotdb_after_write"] == [{"devices": ["root.sg.d1"], "points": 1}]
        assert result.points_written == 1
        assert engine.last("root.sg.dropped.s1") is None
        engine.flush()
        (flush,) = recorder.calls["iotdb_after_flush"]
        info: FlushInfo = flush["info"]
        assert info.path.exists() and info.series_count == 1 and info.point_count == 1 and info.file_size > 0
    finally:
        engine.close()
    assert recorder.calls["iotdb_shutdown"] == [{"engine": engine}]


def test_a_storage_backend_plugin_replaces_the_engine(tmp_path: Path) -> None:
    other = Engine.open(tmp_path / "elsewhere")

    class Backend:
        @hookimpl
        def iotdb_storage_backend(self, data_dir: Path, settings: Any) -> Any:
            return other

    runtime = configure(None, plugins=[Backend()], environ={}, load_entry_points=False,
                        overrides={"data_dir": str(tmp_path / "data")})
    try:
        assert open_engine(runtime) is other
    finally:
        other.close()


def test_every_hookspec_is_exercised_here() -> None:
    implemented = sorted(name for name in vars(Recorder) if name.startswith("iotdb_"))
    assert implemented == SPEC_NAMES


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_every_hookspec_is_documented(name: str) -> None:
    docs = DOCS.read_text(encoding="utf-8")
    assert re.search(rf"^### `{name}\(", docs, re.MULTILINE), f"docs/plugins.md has no section for {name}"
