"""The house rules that keep the layout true: one-way imports, owned names, documented surface."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import click

from clew.app import DEFAULTS
from clew.cli import main
from collectors import load_registry

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_imports_flow_one_way():
    from importlinter.cli import lint_imports

    assert lint_imports(config_filename=str(ROOT / "pyproject.toml")) == 0


def test_generic_import_names_belong_to_clew_alone():
    owners = importlib.metadata.packages_distributions()
    for name in ("clew", "collectors", "console", "policies"):
        assert set(owners.get(name, [])) == {"clew"}, name


def _commands(group: click.Group, prefix: str = "clew") -> list[str]:
    names = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            names.extend(_commands(command, f"{prefix} {name}"))
        else:
            names.append(f"{prefix} {name}")
    return names


def test_every_command_collector_and_setting_is_documented_in_the_readme():
    missing = [c for c in _commands(main) if f"`{c}" not in README]
    missing += [f"collector {n}" for n in load_registry() if f"`{n}`" not in README]
    missing += [f"setting CLEW_{k}" for k in DEFAULTS if f"`CLEW_{k}`" not in README]
    assert not missing, f"undocumented in README.md: {missing}"
