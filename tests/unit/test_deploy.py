"""`feedsync deploy --guided`: six questions (not the template's 47 parameters), answers saved
to samconfig.toml beside the settings already there, then `sam deploy` with that file."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from feedsync.cli import deploy_cmd, main

ROOT = Path(__file__).resolve().parents[2]


def test_the_guided_deploy_asks_only_what_has_no_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "samconfig.toml"
    config.write_text((ROOT / "samconfig.toml").read_text())
    answers = iter(["", "eu-west-1", "not-an-address", "ops@example.com",
                    "https://123-ABC-456.mktorest.com/rest", "101", ""])  # fmt: skip
    prompts: list[str] = []

    def fake_input(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    calls: list[list[str]] = []
    monkeypatch.setattr("builtins.input", fake_input)
    monkeypatch.setattr(deploy_cmd, "_sam", lambda: "/fake/sam")
    monkeypatch.setattr(deploy_cmd.subprocess, "run",
                        lambda command, check: calls.append(command) or _Done())  # fmt: skip
    code = main(["deploy", "--guided", "--config", str(config), "--no-build"])
    assert code == 0, capsys.readouterr().err
    assert len({p.split(" [")[0] for p in prompts}) == 6  # one more: the e-mail asked again
    template = (ROOT / "template.yaml").read_text()
    assert (
        template.split("\nParameters:\n", 1)[1].split("\nConditions:", 1)[0].count("\n    Type:")
        > 40
    )  # what `sam deploy --guided` would have asked
    saved = tomllib.loads(config.read_text())["default"]
    deploy = saved["deploy"]["parameters"]
    assert deploy["stack_name"] == "feedsync" and deploy["region"] == "eu-west-1"
    overrides = dict(p.split("=", 1) for p in deploy["parameter_overrides"].split())
    assert overrides["AlertEmail"] == "ops@example.com"
    assert overrides["MarketoBaseUrl"] == "https://123-ABC-456.mktorest.com/rest"
    assert overrides["DataSourceId"] == "101" and overrides["Architecture"] == "x86_64"
    assert "AdobeUserArn" not in overrides
    assert deploy["capabilities"] == "CAPABILITY_IAM"  # kept
    assert saved["build"]["parameters"]["cached"] is True
    assert calls == [["/fake/sam", "deploy", "--config-file", str(config.resolve())]]


class _Done:
    returncode = 0


def test_the_guided_deploy_refuses_what_would_break_samconfig_and_says_the_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    asked: list[str] = []
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or "")
    # the build is checked before the first question
    assert main(["deploy", "--guided"]) == 2
    assert "run `make build` first" in capsys.readouterr().err and asked == []

    def closed(prompt: str) -> str:
        raise EOFError

    monkeypatch.setattr("builtins.input", closed)  # stdin closed (CI, a pipe)
    assert main(["deploy", "--guided", "--no-build"]) == 2
    err = capsys.readouterr().err
    assert "no answer to 'Stack name': the input ended" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1

    config = tmp_path / "NEW.toml"  # a file of its own: what sam needs besides the answers
    answers = iter(["", "eu-west-1", 'ops"@example.com', "ops@example.com", "", "",
                    "arn:aws:iam::123456789012:user/a\\u0020Stage=x", ""])  # fmt: skip
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    monkeypatch.setattr(deploy_cmd, "_sam", lambda: "/fake/sam")
    monkeypatch.setattr(deploy_cmd.subprocess, "run", lambda command, check: _Done())
    assert main(["deploy", "--guided", "--config", str(config), "--no-build"]) == 0
    err = capsys.readouterr().err
    assert "expected name@example.com, or empty" in err
    assert "expected arn:aws:iam::123456789012:user/NAME, or empty" in err
    deploy = tomllib.loads(config.read_text())["default"]["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM" and deploy["resolve_s3"] is True
    assert deploy["parameter_overrides"] == "AlertEmail=ops@example.com CrmSource=file"
    # a quoted value already there survives the next guided pass as SAM reads it
    text = config.read_text().replace(
        'parameter_overrides = "', 'parameter_overrides = "FeedPrefix=\\"my feeds/\\" '
    )
    config.write_text(text)
    answers = iter(["", "", "", "", "", ""])
    prompts: list[str] = []
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or next(answers))
    assert main(["deploy", "--guided", "--config", str(config), "--no-build"]) == 0
    assert "[eu-west-1]" in prompts[1] and "[ops@example.com]" in prompts[2]  # what it saved
    overrides = tomllib.loads(config.read_text())["default"]["deploy"]["parameters"][
        "parameter_overrides"
    ]
    assert overrides.startswith('FeedPrefix="my feeds/" ') and "AlertEmail=ops@" in overrides
