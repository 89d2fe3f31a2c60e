"""The command line's own contract: where global options go, how failures look, one exit path."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from exportctl import __version__, errors
from exportctl.cli import ExportctlGroup
from tests.conftest import ROOT, exportctl

RECIPE = """\
name: t
checkpoint:
  path: model.pt
input:
  imgsz: 320
formats:
  {format}:
    precisions: [fp32]
"""


@pytest.fixture
def recipe_dir(tmp_path: Path) -> Path:
    shutil.copyfile(ROOT / "tests" / "fixtures" / "detector.pt", tmp_path / "model.pt")  # plan reads its task
    return tmp_path


def _recipe(recipe_dir: Path, fmt: str = "onnx") -> Path:
    path = recipe_dir / "recipe.yaml"
    path.write_text(RECIPE.format(format=fmt))
    return path


@pytest.mark.parametrize("where", ["before", "after"])
def test_store_and_json_work_before_or_after_the_command(recipe_dir: Path, where: str) -> None:
    store = recipe_dir / "chosen"
    options = ["--store", str(store), "--json"]
    args = [*options, "plan", _recipe(recipe_dir)] if where == "before" else ["plan", _recipe(recipe_dir), *options]
    done = exportctl(*args, store=recipe_dir / "from-env")
    assert json.loads(done.stdout)["cells"][0]["cell"] == "onnx/fp32"
    assert (store / "oci-layout").is_file() and not (recipe_dir / "from-env").exists()


def test_json_failure_is_one_error_object_on_stdout(recipe_dir: Path) -> None:
    done = exportctl("plan", _recipe(recipe_dir, "onxx"), "--json", store=recipe_dir / "s", check=False)
    assert done.returncode == errors.CONFIG_ERROR
    reported = json.loads(done.stdout)
    assert reported == {"error": reported["error"], "exit_code": errors.CONFIG_ERROR, "hint": reported["hint"]}
    assert "formats.onxx" in reported["error"] and "onnx" in reported["hint"]
    assert "error:" in done.stderr  # people still read the message where they always did


def test_markup_in_recipe_values_is_printed_as_text(recipe_dir: Path) -> None:
    done = exportctl("plan", _recipe(recipe_dir, '"[/x]"'), store=recipe_dir / "s", check=False)
    assert done.returncode == errors.CONFIG_ERROR, done.stderr
    assert "formats.[/x]" in done.stderr and "Traceback" not in done.stderr


def test_help_lists_every_command_of_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Commands", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `exportctl ([\w-]+)", table, flags=re.M)
    listed = re.findall(r"^  (\w[\w-]*) ", exportctl("--help").stdout, flags=re.M)
    # A group's subcommands (`ci github`, `ci k8s`) each have their row; --help lists the group once.
    assert len(documented) >= 17 and sorted(set(documented)) == sorted(listed)


def test_ctrl_c_exits_130_through_the_one_exit_path() -> None:
    group = ExportctlGroup(name="exportctl")

    @group.command()
    def wait() -> None:
        raise KeyboardInterrupt

    done = CliRunner().invoke(group, ["wait"])
    assert done.exit_code == errors.INTERRUPTED and "interrupted" in done.output


def test_only_the_cli_exits() -> None:
    """Failures are typed errors; cli.py alone turns them into exit codes (in-cell code has its own contract)."""
    package = ROOT / "exportctl"
    exits = [path.relative_to(package).as_posix() for path in package.rglob("*.py")
             if "sys.exit(" in path.read_text() and path.relative_to(package).parts[0] != "cell"]
    assert exits == ["cli.py"]


def test_every_command_module_stays_out_of_cli() -> None:
    """No import circle: commands/ never imports the group that adds them."""
    cli_import = re.compile(r"^\s*(from exportctl\.cli\b|import exportctl\.cli\b|from exportctl import .*\bcli\b)",
                            re.M)
    for path in (ROOT / "exportctl" / "commands").glob("*.py"):
        assert not cli_import.search(path.read_text()), path


def test_usage_errors_are_configuration_errors_not_validation_failures() -> None:
    """click exits 2 on a bad option, which the export guide's contract reserves for "outside tolerances"."""
    done = exportctl("--json", "ls", "--no-such-option", check=False)
    assert done.returncode == errors.CONFIG_ERROR
    assert json.loads(done.stdout)["exit_code"] == errors.CONFIG_ERROR
    assert "--no-such-option" in done.stderr and "Traceback" not in done.stderr


def test_shell_completion_the_readme_documents_completes_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert '_EXPORTCTL_COMPLETE=bash_source exportctl' in readme
    script = Path(sys.executable).with_name("exportctl")  # the console script of the installed package
    env = {**os.environ, "COMP_WORDS": "exportctl ba", "COMP_CWORD": "1", "_EXPORTCTL_COMPLETE": "bash_complete"}
    done = subprocess.run([str(script)], env=env, capture_output=True, text=True, check=False)
    assert done.stdout.split() == ["plain,base-image"], done.stderr


def test_every_command_in_the_table_loads_under_its_name() -> None:
    from exportctl.cli import COMMANDS, main

    ctx = click.Context(main)
    for name, _where in COMMANDS:
        command = main.get_command(ctx, name)
        assert command is not None and command.name == name


def test_a_command_imports_only_what_it_uses(tmp_path: Path) -> None:
    """Start-up is imports: `ls` must not pay for build's, or for rich, pydantic, yaml or jinja2."""
    probe = ("import sys\nfrom exportctl.cli import main\n"
             "try:\n    main(['ls'], prog_name='exportctl')\nexcept SystemExit:\n    pass\n"
             "print(' '.join(sorted(sys.modules)), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe], env={**os.environ, "EXPORTCTL_STORE": str(tmp_path / "s")},
                          capture_output=True, text=True, check=True)
    loaded = set(done.stderr.split())
    assert done.stdout.split() == ["bundle", "recipe", "cells", "status", "built", "signed", "by"]
    assert "exportctl.commands.ls" in loaded
    heavy = {"rich", "pydantic", "yaml", "jinja2", "exportctl.commands.build", "exportctl.recipe"}
    assert not heavy & loaded


def test_version_is_answered_before_click_with_click_s_words(tmp_path: Path) -> None:
    fast = exportctl("--version")
    through_click = exportctl("--store", tmp_path, "--version")  # any other argument goes through click
    assert fast.stdout == through_click.stdout == f"exportctl, version {__version__}\n"
    probe = "import sys\nsys.argv = ['exportctl', '--version']\nimport exportctl.__main__ as m\nm.run()\n" \
            "print('click' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout == f"exportctl, version {__version__}\nFalse\n"


def test_rebuild_check_takes_build_s_parallel_options(tmp_path: Path) -> None:
    from exportctl.cli import main

    ctx = click.Context(main)
    options = {name: {p.name: (p.opts, p.default, repr(p.type)) for p in main.get_command(ctx, name).params  # type: ignore[union-attr]
                      if p.name in ("jobs", "memory_budget")} for name in ("build", "rebuild")}
    assert options["build"] == options["rebuild"] and set(options["rebuild"]) == {"jobs", "memory_budget"}
    done = exportctl("rebuild", "sha256:" + "0" * 64, "--check", "-j", "0", store=tmp_path / "s", check=False)
    assert done.returncode == errors.CONFIG_ERROR and "--jobs" in done.stderr


def test_listings_print_whole_values_and_no_control_characters(capsys: pytest.CaptureFixture[str]) -> None:
    from exportctl.commands.common import print_columns

    digest = "sha256:" + "ab" * 32
    print_columns(("bundle", "recipe"), [(digest, "evil\x1b[2J\nname"), ("sha256:00", "ok")])
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["bundle" + " " * 65 + "  recipe", f"{digest}  evil?[2J?name", "sha256:00" + " " * 62 + "  ok"]
