"""`ingestion` sits above `datasets` and `classifier`: datasets never imports either (not even
inside a function), so the first scoring after an ingestion is ingestion's explicit call."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_datasets_never_imports_ingestion_or_classifier() -> None:
    offending = {
        str(path.relative_to(ROOT)): sorted(
            m
            for m in imported_modules(path)
            if m.split(".")[0] == "classifier" or m.startswith("webapp.ingestion")
        )
        for path in (ROOT / "webapp" / "datasets").rglob("*.py")
    }
    assert {k: v for k, v in offending.items() if v} == {}


def test_the_dataset_ready_signal_is_gone() -> None:
    from webapp.datasets import signals

    assert not hasattr(signals, "dataset_ready")
