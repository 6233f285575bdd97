"""Export the JSON Schemas of the event contracts to ``shared/schemas/``.

One file per registered ``(type, version)``, ``<type>.v<version>.json``: the envelope with
``type`` and ``version`` fixed and ``data`` replaced by the model's schema; plus
``envelope.json``. Files are written with sorted keys, a 2-space indent and a trailing
newline, so they diff cleanly and the snapshot test can compare them byte for byte.

    python -m shared.export_schemas            # rewrite the files (and delete stray ones)
    python -m shared.export_schemas --check    # exit 1 naming missing/differing/extra files
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, create_model

import shared  # noqa: F401 - registers every contract in the default registry
from shared.envelope import Envelope
from shared.registry import Registry, default_registry

__all__ = ["SCHEMA_DIR", "check", "main", "render", "write"]

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
_LITERAL: Any = Literal  # subscripted with runtime values, which type checkers cannot follow
_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _dump(schema: dict[str, Any]) -> str:
    return json.dumps({"$schema": _DIALECT, **schema}, indent=2, sort_keys=True) + "\n"


def render(registry: Registry = default_registry) -> dict[str, str]:
    """File name -> file text for every schema the registry defines."""
    files = {"envelope.json": _dump(Envelope.model_json_schema())}
    for model in registry.all_models():
        typed: type[BaseModel] = create_model(  # the envelope as it is for this one event
            f"{model.TYPE}.v{model.VERSION}",
            __base__=Envelope,
            __doc__=model.__doc__,
            type=(_LITERAL[model.TYPE], ...),
            version=(_LITERAL[model.VERSION], ...),
            data=(model, ...),
        )
        files[f"{model.TYPE}.v{model.VERSION}.json"] = _dump(typed.model_json_schema())
    return files


def check(directory: Path = SCHEMA_DIR, registry: Registry = default_registry) -> list[str]:
    """Differences between ``directory`` and the code, one line per file; empty when equal."""
    expected = render(registry)
    present = {path.name for path in directory.glob("*.json")} if directory.is_dir() else set()
    problems = [f"missing: {name}" for name in sorted(expected.keys() - present)]
    problems += [f"extra: {name}" for name in sorted(present - expected.keys())]
    problems += [
        f"differs: {name}"
        for name in sorted(expected.keys() & present)
        if (directory / name).read_text(encoding="utf-8") != expected[name]
    ]
    return problems


def write(directory: Path = SCHEMA_DIR, registry: Registry = default_registry) -> None:
    """Make ``directory`` hold exactly the rendered schemas (stray ``*.json`` are deleted)."""
    expected = render(registry)
    directory.mkdir(parents=True, exist_ok=True)
    for path in directory.glob("*.json"):
        if path.name not in expected:
            path.unlink()
    for name, text in expected.items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.export_schemas", description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 on drift")
    parser.add_argument("--dir", type=Path, default=SCHEMA_DIR, help="schema directory")
    args = parser.parse_args(argv)
    if not args.check:
        write(args.dir)
        return 0
    problems = check(args.dir)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        print("run `python -m shared.export_schemas` to regenerate", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
