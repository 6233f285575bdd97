"""The committed JSON Schemas are exactly what the code generates."""

import json
from pathlib import Path

from shared.export_schemas import SCHEMA_DIR, check, main, render, write
from shared.registry import all_models


def test_committed_schemas_match_the_code() -> None:
    assert check() == [], "run `python -m shared.export_schemas` and commit the result"


def test_one_schema_per_registered_type_and_version_plus_the_envelope() -> None:
    expected = {f"{m.TYPE}.v{m.VERSION}.json" for m in all_models()} | {"envelope.json"}
    assert {path.name for path in SCHEMA_DIR.glob("*.json")} == expected
    assert set(render()) == expected


def test_schema_fixes_type_and_version_and_describes_data() -> None:
    for model in all_models():
        schema = json.loads(render()[f"{model.TYPE}.v{model.VERSION}.json"])
        assert schema["properties"]["type"]["const"] == model.TYPE
        assert schema["properties"]["version"]["const"] == model.VERSION
        data = schema["$defs"][schema["properties"]["data"]["$ref"].rsplit("/", 1)[1]]
        assert data["additionalProperties"] is False
        assert set(data["properties"]) == set(model.model_fields)


def test_files_are_sorted_indented_and_end_with_a_newline() -> None:
    for name, text in render().items():
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n", name


def test_check_names_differing_missing_and_extra_files(tmp_path: Path) -> None:
    write(tmp_path)
    assert check(tmp_path) == []
    (tmp_path / "token.locked.v1.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "recovery.used.v1.json").unlink()
    (tmp_path / "token.renamed.v1.json").write_text("{}\n", encoding="utf-8")
    assert check(tmp_path) == [
        "missing: recovery.used.v1.json",
        "extra: token.renamed.v1.json",
        "differs: token.locked.v1.json",
    ]
    assert main(["--check", "--dir", str(tmp_path)]) == 1

    write(tmp_path)  # regenerating repairs all three
    assert check(tmp_path) == []
    assert main(["--check", "--dir", str(tmp_path)]) == 0
