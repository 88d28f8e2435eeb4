"""The command line as users meet it: light start-up, one spelling per concept, help everywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from simlink.cli import main
from simlink.cli.options import AliasOption

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("pandas", "pyarrow", "duckdb", "splink", "numpy", "matplotlib", "scipy")


def _modules_after(code: str) -> set[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sys.modules))"],
                         env=env, capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize("code", ["import simlink", "import simlink.cli",
                                  "from simlink.cli import main\nmain(['--help'], standalone_mode=False)"])
def test_cli_and_package_import_no_heavy_library(code: str) -> None:
    loaded = _modules_after(code)
    assert "click" in loaded or code == "import simlink"
    assert sorted(m for m in HEAVY if m in loaded) == []


def test_keygen_imports_no_heavy_library(tmp_path: Path) -> None:
    loaded = _modules_after(f"from simlink.cli import main\nmain(['keygen', '-o', {str(tmp_path / 'k')!r}], standalone_mode=False)")
    assert (tmp_path / "k").exists()
    assert sorted(m for m in HEAVY if m in loaded) == []


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in group.commands.items():
        found.append((prefix + name, command))
        if isinstance(command, click.Group):
            found += _commands(command, prefix + name + " ")
    return found


def test_every_option_has_help_and_hidden_aliases_stay_hidden() -> None:
    checked = 0
    for name, command in _commands(main):
        ctx = click.Context(command, info_name=name)
        help_text = command.get_help(ctx)
        for param in command.params:
            if not isinstance(param, click.Option) or param.hidden:
                continue
            assert param.help, f"simlink {name} {param.opts[0]} has no help"
            checked += 1
            if isinstance(param, AliasOption):
                for alias in param.hidden_aliases:
                    assert alias not in help_text.replace(alias + "-", ""), f"{name}: {alias} shown"
    assert checked > 30


def test_one_spelling_for_file_and_folder_outputs() -> None:
    spellings = {}
    for name, command in _commands(main):
        for param in command.params:
            if isinstance(param, click.Option) and param.name in ("output", "out_dir", "json_out"):
                spellings.setdefault(param.name, set()).add(tuple(o for o in param.opts
                                                                  if o not in getattr(param, "hidden_aliases", ())))
    assert spellings == {"output": {("-o", "--output")}, "out_dir": {("--out-dir",)}, "json_out": {("--json",)}}


def test_keygen_positional_and_option(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["keygen", str(tmp_path / "a.key")]).exit_code == 0
    assert runner.invoke(main, ["keygen", "-o", str(tmp_path / "b.key")]).exit_code == 0
    assert (tmp_path / "a.key").read_bytes() != (tmp_path / "b.key").read_bytes()
    neither = runner.invoke(main, ["keygen"])
    assert neither.exit_code == 2 and "-o FILE" in neither.output
    both = runner.invoke(main, ["keygen", str(tmp_path / "c.key"), "-o", str(tmp_path / "d.key")])
    assert both.exit_code == 2 and not (tmp_path / "c.key").exists() and not (tmp_path / "d.key").exists()


def test_synth_out_dir_and_old_out_alias_give_the_same_files(tmp_path: Path) -> None:
    runner = CliRunner()
    new = runner.invoke(main, ["synth", "--people", "30", "--seed", "4", "--out-dir", str(tmp_path / "new")])
    old = runner.invoke(main, ["synth", "--people", "30", "--seed", "4", "--out", str(tmp_path / "old")])
    assert new.exit_code == 0 and old.exit_code == 0, new.output + old.output
    for name in ("police.csv", "truth.csv"):
        assert (tmp_path / "new" / name).read_bytes() == (tmp_path / "old" / name).read_bytes()


def test_evaluate_json_to_file_and_old_bare_flag(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "s"
    assert runner.invoke(main, ["synth", "--people", "40", "--seed", "1", "--out-dir", str(out)]).exit_code == 0
    truth = out / "truth.csv"
    perfect = tmp_path / "perfect.csv"
    perfect.write_text(truth.read_text().replace("person_id", "person_key"))
    target = tmp_path / "metrics.json"
    to_file = runner.invoke(main, ["evaluate", str(perfect), "--truth", str(truth), "--json", str(target)])
    assert to_file.exit_code == 0, to_file.output
    assert json.loads(target.read_text())["pair_f1"] == 1.0
    bare = runner.invoke(main, ["evaluate", str(perfect), "--truth", str(truth), "--json"])
    assert bare.exit_code == 0 and json.loads(bare.output) == json.loads(target.read_text())
    dash = runner.invoke(main, ["evaluate", str(perfect), "--truth", str(truth), "--json", "-"])
    assert json.loads(dash.output) == json.loads(target.read_text())


@pytest.mark.parametrize("spelling", ["--out-dir", "--out"])
def test_demo_folder_option_both_spellings(tmp_path: Path, spelling: str) -> None:
    (tmp_path / "kept.txt").write_text("someone's file")
    result = CliRunner().invoke(main, ["demo", spelling, str(tmp_path), "--people", "60"])
    assert result.exit_code == 2 and str(tmp_path) in result.output and "not empty" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.txt"]
