"""Helpers that install real (tiny) distributions on a temporary sys.path entry."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from stevedore.extension import ExtensionManager

InstallDist = Callable[..., Path]


@pytest.fixture
def install_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InstallDist]:
    """Install a distribution (dist-info with entry points, plus optional modules) on sys.path.

    The distribution is real as far as ``importlib.metadata`` and stevedore are concerned; it is
    removed from ``sys.path`` (and its modules from ``sys.modules``) when the test ends. stevedore
    keeps the entry points of a group for the life of the process, so that memo is cleared around
    the test.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    created_modules: list[str] = []

    def install(name: str, entry_points: dict[str, dict[str, str]], modules: dict[str, str] | None = None) -> Path:
        dist_info = site / f"{name.replace('-', '_')}-1.0.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        lines = []
        for group, entries in entry_points.items():
            lines.append(f"[{group}]")
            lines.extend(f"{key} = {value}" for key, value in entries.items())
        (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        for module, source in (modules or {}).items():
            (site / f"{module}.py").write_text(source)
            created_modules.append(module)
        importlib.invalidate_caches()
        ExtensionManager.ENTRY_POINT_CACHE.clear()
        return site

    yield install
    for module in created_modules:
        sys.modules.pop(module, None)
    importlib.invalidate_caches()
    ExtensionManager.ENTRY_POINT_CACHE.clear()
