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
