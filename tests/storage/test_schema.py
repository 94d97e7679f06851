"""The schema registry: creation, canonical paths, persistence and a torn log tail."""

from __future__ import annotations

from pathlib import Path

import pytest

from iotdb_core.datatypes import Compressor, TSDataType, TSEncoding
from iotdb_core.paths import PathError
from iotdb_core.storage.errors import SchemaError
from iotdb_core.storage.schema import (
    SCHEMA_LOG,
    SchemaRegistry,
    canonical_device,
    canonical_measurement,
    make_schema,
    split_series_path,
)


def test_canonical_paths() -> None:
    assert canonical_device("root.sg.`d1`") == ("root.sg.d1", ("root", "sg", "d1"))
    assert canonical_device("root.sg.`a.b`")[0] == "root.sg.`a.b`"
    assert canonical_measurement("`s1`") == "s1"
    assert canonical_measurement("`12`") == "`12`"
    assert split_series_path("root.sg.d1.`s 1`") == ("root.sg.d1", "`s 1`")
    with pytest.raises(PathError):
        canonical_device("root")
    with pytest.raises(PathError):
        canonical_measurement("a.b")
    with pytest.raises(PathError):
        split_series_path("root.sg")


def test_create_and_reload(tmp_path: Path) -> None:
    registry = SchemaRegistry(tmp_path, database_level=1)
    registry.create_database("root.sg")
    registry.create_series(
        [
            make_schema("root.sg.d1", "s1", TSDataType.INT64),
            make_schema("root.other.d2", "t", TSDataType.TEXT, TSEncoding.DICTIONARY, Compressor.ZSTD),
        ],
        auto_database=True,
        exist_ok=False,
    )
    registry.close()
    reloaded = SchemaRegistry(tmp_path, database_level=1)
    assert reloaded.databases() == ["root.other", "root.sg"]
    assert reloaded.devices() == ["root.other.d2", "root.sg.d1"]
    text = reloaded.get("root.other.d2", "t")
    assert text is not None
    assert (text.data_type, text.encoding, text.compressor) == (TSDataType.TEXT, TSEncoding.DICTIONARY, Compressor.ZSTD)
    assert reloaded.get("root.sg.d1", "s1") == make_schema("root.sg.d1", "s1", TSDataType.INT64)
    reloaded.close()


def test_duplicates_and_nesting(tmp_path: Path) -> None:
    registry = SchemaRegistry(tmp_path, database_level=1)
    registry.create_database("root.sg")
    with pytest.raises(SchemaError, match="already exists"):
        registry.create_database("root.sg")
    with pytest.raises(SchemaError, match=r"under existing database root\.sg"):
        registry.create_database("root.sg.inner")
    registry.create_database("root.a.b")
    with pytest.raises(SchemaError, match=r"above existing database root\.a\.b"):
        registry.create_database("root.a")
    series = make_schema("root.sg.d", "s", TSDataType.DOUBLE)
    registry.create_series([series], auto_database=False, exist_ok=False)
    with pytest.raises(SchemaError, match=r"timeseries root\.sg\.d\.s already exists"):
        registry.create_series([series], auto_database=False, exist_ok=False)
    registry.create_series([make_schema("root.sg.d", "s", TSDataType.TEXT)], auto_database=False, exist_ok=True)
    assert registry.get("root.sg.d", "s") == series
    with pytest.raises(SchemaError, match="belongs to no database"):
        registry.create_series([make_schema("root.x.d", "s", TSDataType.DOUBLE)], auto_database=False, exist_ok=False)
    registry.close()


def test_database_levels(tmp_path: Path) -> None:
    registry = SchemaRegistry(tmp_path, database_level=2)
    registry.create_series([make_schema("root.a.b.dev", "s", TSDataType.DOUBLE)], auto_database=True, exist_ok=False)
    assert registry.databases() == ["root.a.b"]
    with pytest.raises(PathError, match="no level below its database"):
        registry.planned_database(("root", "a", "b"))
    registry.close()


def test_torn_tail_is_cut(tmp_path: Path) -> None:
    registry = SchemaRegistry(tmp_path, database_level=1)
    registry.create_series([make_schema("root.sg.d", "s1", TSDataType.DOUBLE)], auto_database=True, exist_ok=False)
    registry.create_series([make_schema("root.sg.d", "s2", TSDataType.DOUBLE)], auto_database=True, exist_ok=False)
    registry.close()
    log = tmp_path / SCHEMA_LOG
    data = log.read_bytes()
    log.write_bytes(data[:-3])
    reloaded = SchemaRegistry(tmp_path, database_level=1)
    assert reloaded.get("root.sg.d", "s1") is not None
    assert reloaded.get("root.sg.d", "s2") is None
    reloaded.create_series([make_schema("root.sg.d", "s3", TSDataType.INT32)], auto_database=True, exist_ok=False)
    reloaded.close()
    again = SchemaRegistry(tmp_path, database_level=1)
    assert [s.measurement for s in again.all_series()] == ["s1", "s3"]
    again.close()
