"""``whisper-devkit``: subcommands are registered, bad names get a clear message and exit code 1."""

from __future__ import annotations

import pytest

from whisper_devkit import cli


def test_every_command_is_registered():
    parser = cli.build_parser()
    for command in cli.COMMANDS:
        assert parser.parse_args([command.name]).run is command.run


@pytest.mark.parametrize(("argv", "message"), [(["speech", "nope"], "unknown corpora"), (["models", "nope"], "unknown model")])
def test_unknown_names_are_refused_with_what_is_known(argv, message, capsys):
    assert cli.main(argv) == 1
    error = capsys.readouterr().err
    assert message in error and "known:" in error
