"""Control characters from files envcheck reads never reach the terminal raw: every command's console, Markdown
and error line escape them (`\\x1b`), and an error stays on one line whatever value it quotes."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.table import Table
from typer.testing import CliRunner

from envcheck.cli import app
from envcheck.cli.output import console, one_line

HOSTILE = "name\x1b[2J\x1b]0;T\x07\u202eend"


def test_the_console_escapes_strings_and_table_cells() -> None:
    stream = io.StringIO()
    table = Table()
    table.add_column("a")
    table.add_row(HOSTILE)
    terminal = console(stream)
    terminal.print(table)
    terminal.print(HOSTILE)
    text = stream.getvalue()
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert text.count("name\\x1b[2J\\x1b]0;T\\x07\\u202eend") == 2


def test_the_console_escapes_text_objects_inside_panels() -> None:
    from rich.panel import Panel
    from rich.text import Text

    stream = io.StringIO()
    console(stream).print(Panel(Text(HOSTILE, style="bold")))
    assert "\x1b" not in stream.getvalue() and "name\\x1b[2J" in stream.getvalue()


def test_info_from_a_snapshot_whose_every_string_is_hostile_prints_no_control_character(tmp_path: Path) -> None:
    from envcheck.snapshot import to_json
    from tests import factories

    snapshot = json.loads(to_json(factories.snapshot()))

    def poison(value: object) -> object:
        if isinstance(value, dict):
            return {key: item if key == "schema" else poison(item) for key, item in value.items()}
        if isinstance(value, list):
            return [poison(item) for item in value]
        return value + "\x1b[2J\x07\x9b" if isinstance(value, str) else value

    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(poison(snapshot)))
    for extra in ([], ["--verbose"], ["--markdown"]):
        result = CliRunner().invoke(app, ["info", "--from", str(path), *extra])
        assert result.exit_code == 0, result.output
        assert not any(character in result.stdout for character in "\x1b\x07\x9b"), extra


def test_an_error_quoting_a_multi_line_value_is_one_escaped_line() -> None:
    assert one_line("--only a\nb\x1b: unknown") == "--only a\\nb\\x1b: unknown"
    result = CliRunner().invoke(app, ["doctor", "--only", "a\nb\x1b[2J"])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "\x1b" not in result.stderr


def test_recommend_shows_a_hostile_model_name_escaped(tmp_path: Path) -> None:
    config = tmp_path / "tiny\x1b[2J" / "config.json"
    config.parent.mkdir()
    config.write_text(
        json.dumps({"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "vocab_size": 50257})
    )
    for extra in ([], ["--markdown"]):
        result = CliRunner().invoke(app, ["recommend", "--hf-config", str(config), "--tokens", "1B", *extra])
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.stdout and "tiny\\x1b[2J" in result.stdout
