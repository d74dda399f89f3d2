"""A newcomer's path: misspelt settings, JSON through make, the make targets and settings the README names.

Each command the README gives must exist and do what it says; each setting it lists must be one the
code reads, with the default cdk.json gives.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import SETTING_KEYS, SettingsError, check_setting_names, defaults
from tests.conftest import CDK_JSON_CONTEXT, ROOT
from tests.test_settings import _run_app
from tools.cdk_cli import split_cdk_args

README = (ROOT / "README.md").read_text()
# Everything a reader types: the README and docs/.
DOCS = "\n".join(page.read_text() for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
SETTINGS_PAGE = (ROOT / "docs" / "settings.md").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()


@pytest.mark.parametrize(
    ("given", "suggested"),
    [
        ("instancetype", "instanceType"),  # the issue's own example: silently ignored before
        ("instanceTyp", "instanceType"),
        ("publicendpoint", "publicEndpoint"),
        ("maxTask", "maxTasks"),
        ("modelS3URI", "modelS3Uri"),
        ("corePerTask", "coresPerTask"),
    ],
)
def test_a_misspelt_setting_stops_synth_naming_the_closest_one(given: str, suggested: str) -> None:
    with pytest.raises(SettingsError, match=rf"^Unknown setting '{given}': did you mean '{suggested}'\?"):
        check_setting_names([*CDK_JSON_CONTEXT, given])


def test_an_unknown_setting_with_no_close_name_is_refused_without_a_guess() -> None:
    with pytest.raises(SettingsError, match=r"^Unknown setting 'zzz': The settings are listed in docs/settings\.md"):
        check_setting_names(["zzz"])


def test_the_cdks_own_context_keys_are_not_ours_to_refuse() -> None:
    check_setting_names(
        [
            *CDK_JSON_CONTEXT,  # every setting and every feature flag in cdk.json
            "aws:cdk:enable-path-metadata",
            "aws-cdk:enableDiffNoFail",
            "cdk-migrate",
            "acknowledged-issue-numbers",
            "availability-zones:account=111122223333:region=us-east-1",
            "@aws-cdk/core:newStyleStackSynthesis",
        ]
    )


def test_the_app_exits_with_one_line_on_a_misspelt_setting(tmp_path: Path) -> None:
    result = _run_app({"instancetype": "inf2.xlarge"}, tmp_path)

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: Unknown setting 'instancetype': did you mean 'instanceType'? "
        "The settings are listed in docs/settings.md"
    ]
    assert not list(tmp_path.glob("*.template.json"))


def test_a_setting_in_the_clis_context_overflow_file_is_checked_too(tmp_path: Path) -> None:
    # GIVEN a context too large for the environment: the CLI writes the rest to a file it names
    overflow = tmp_path / "context-overflow.json"
    overflow.write_text(json.dumps({"instancetype": "inf2.xlarge"}))
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(CDK_JSON_CONTEXT), "CDK_OUTDIR": str(tmp_path)}
    env["CONTEXT_OVERFLOW_LOCATION_ENV"] = str(overflow)
    # and no Node.js to start jsii with: the check must happen before the CDK loads
    env["PATH"] = str(Path(sys.executable).parent)

    # THEN the misspelt setting in the file is refused in one line, before a template is written
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py")], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: Unknown setting 'instancetype': did you mean 'instanceType'? "
        "The settings are listed in docs/settings.md"
    ]
    assert not list(tmp_path.glob("*.template.json"))


# --- CDK_ARGS through make ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cdk_args", "expected"),
    [
        ("-c instanceType=inf2.xlarge", ["-c", "instanceType=inf2.xlarge"]),
        (
            '-c batching={"maxBatchSize": 16, "batchTimeoutMicros": 2000}',
            ["-c", 'batching={"maxBatchSize": 16, "batchTimeoutMicros": 2000}'],
        ),
        (
            '-c instanceType=inf1.6xlarge -c models=[{"name": "bert", "cores": 8}, {"name": "b", "cores": 8}]',
            [
                "-c",
                "instanceType=inf1.6xlarge",
                "-c",
                'models=[{"name": "bert", "cores": 8}, {"name": "b", "cores": 8}]',
            ],
        ),
        ("-c 'spot=false'  --profile prod", ["-c", "spot=false", "--profile", "prod"]),
        (
            "--context publicEndpoint=true -c allowedCidr=203.0.113.7/32",
            ["--context", "publicEndpoint=true", "-c", "allowedCidr=203.0.113.7/32"],
        ),
        ("", []),
    ],
)
def test_cdk_args_keep_each_context_value_whole(cdk_args: str, expected: list[str]) -> None:
    assert split_cdk_args(cdk_args) == expected


@pytest.fixture
def recorded_npx(tmp_path: Path) -> Path:
    """An ``npx`` first on PATH that prints the arguments it was given, as JSON."""
    npx = tmp_path / "npx"
    npx.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    npx.chmod(npx.stat().st_mode | stat.S_IXUSR)
    return tmp_path


# The set-up steps taken as done (make -o): the tests run in the venv they would install.
STAMPS_DONE = [
    *("-o", "setup", "-o", "node_modules/.installed", "-o", ".venv/.installed-app"),
    *("-o", ".venv/.installed-client", "-o", ".venv/.installed-dev"),
]


def make(target: str, fake_bin: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """``make <target>`` as typed, set-up steps taken as done, with ``npx`` recorded instead of run."""
    return subprocess.run(
        ["make", "-s", *STAMPS_DONE, "-o", "aws-credentials", "-o", "service-roles", target]
        + [f"{name}={value}" for name, value in variables.items()],
        cwd=ROOT,
        env={**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("target", ["synth", "diff", "deploy", "destroy", "bootstrap"])
def test_json_settings_reach_the_cdk_cli_through_make_exactly_as_typed(target: str, recorded_npx: Path) -> None:
    typed = '-c batching={"maxBatchSize": 16, "batchTimeoutMicros": 2000} -c spot=false'

    result = make(target, recorded_npx, CDK_ARGS=typed)

    assert result.returncode == 0, result.stderr
    arguments = json.loads(result.stdout.splitlines()[0])
    assert arguments[:3] == ["--no-install", "cdk", target]
    assert arguments[-4:] == ["-c", 'batching={"maxBatchSize": 16, "batchTimeoutMicros": 2000}', "-c", "spot=false"]


def test_a_malformed_cdk_args_is_one_line(recorded_npx: Path) -> None:
    result = make("synth", recorded_npx, CDK_ARGS="-c nokeyvalue")

    assert result.returncode != 0
    assert "error: CDK_ARGS: -c needs key=value, got 'nokeyvalue'" in result.stderr
    assert "Traceback" not in result.stderr


# --- what the README names exists ---------------------------------------------------------------------


def readme_make_targets() -> set[str]:
    # as a command: in backticks, or at the start of a line of a shell block
    return set(re.findall(r"(?:`|^)make ([a-z][a-z-]*)", DOCS, flags=re.MULTILINE))


def test_every_make_target_the_readme_names_exists() -> None:
    targets = set(re.findall(r"^([a-z][a-z-]*):", MAKEFILE, flags=re.MULTILINE))
    named = readme_make_targets()

    assert {"synth", "test", "model", "bootstrap", "deploy", "bench", "destroy"} <= named
    assert named - targets == set()


def test_every_setting_the_readme_lists_is_one_the_code_reads_with_cdk_jsons_default() -> None:
    table = SETTINGS_PAGE[SETTINGS_PAGE.index("## Settings") : SETTINGS_PAGE.index("### Instance sizes")]
    first_cells = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    listed = {name for cell in first_cells for name in re.findall(r"`([A-Za-z0-9]+)`", cell)}

    assert listed == set(SETTING_KEYS)
    assert set(defaults()) == set(SETTING_KEYS)


def test_make_bench_passes_every_client_option_as_typed(tmp_path: Path) -> None:
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "there", "."]) + "\n")
    typed = f'--requests 3 --warmup 0 --protocol rest --text "Hello there." --tokenizer {vocab} --json'

    result = subprocess.run(
        ["make", "-s", *STAMPS_DONE, "bench", "TARGET=127.0.0.1:9", f"BENCH_ARGS={typed}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["settings"]["inputs"] == "text"  # the quoted sentence arrived whole
    assert report["settings"]["protocol"] == "rest"
    assert report["requests"] == 3
    assert "error: 3 of 3 requests failed" in result.stderr


def test_npx_cdk_typed_by_hand_runs_the_app_in_the_projects_venv(tmp_path: Path) -> None:
    """cdk.json's app is tools/cdk-app.sh: the project's .venv without activating it, one line on a bad setting."""
    app_command = json.loads((ROOT / "cdk.json").read_text())["app"]
    env = {
        "PATH": "/usr/bin:/bin",  # no venv on PATH: as typed in a fresh shell
        "CDK_CONTEXT_JSON": json.dumps({**CDK_JSON_CONTEXT, "instancetype": "inf2.xlarge"}),
        "CDK_OUTDIR": str(tmp_path),
    }

    result = subprocess.run(
        app_command, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: Unknown setting 'instancetype': did you mean 'instanceType'? "
        "The settings are listed in docs/settings.md"
    ]


def test_without_a_venv_the_app_says_what_to_run(tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    launcher = tmp_path / "tools" / "cdk-app.sh"
    launcher.write_text((ROOT / "tools" / "cdk-app.sh").read_text())

    result = subprocess.run(["sh", str(launcher)], capture_output=True, text=True, timeout=30, check=False)

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: no .venv in {tmp_path}: run 'make synth' once (it installs everything)"
    ]


def test_no_command_in_the_readme_needs_the_venv_activated() -> None:
    blocks = re.findall(r"```sh\n(.*?)```", DOCS, flags=re.DOTALL)
    typed = [line.strip() for block in blocks for line in block.splitlines() if line.strip()]
    typed += re.findall(r"\| `((?:python|pytest|python3|mypy|ruff|cdk)\b[^`]*)` \|", DOCS)

    bare = [line for line in typed if re.match(r"(python3?|pytest|mypy|ruff|cdk)\b", line)]
    assert typed
    assert bare == [], "type .venv/bin/<tool>, npx cdk or a make target instead"


@pytest.mark.parametrize("target", ["deploy", "diff", "destroy", "bootstrap"])
def test_without_credentials_make_says_how_to_set_them_up_before_any_synth(target: str, recorded_npx: Path) -> None:
    nowhere = {
        "AWS_CONFIG_FILE": "/nonexistent/config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance metadata: nothing leaves this machine
        "AWS_REGION": "us-east-1",
    }
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")} | nowhere
    result = subprocess.run(
        ["make", "-s", *STAMPS_DONE, target],
        cwd=ROOT,
        env={**environment, "PATH": f"{recorded_npx}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert result.stdout == ""  # npx (the CDK CLI, hence synth) never ran
    lines = [line for line in result.stderr.splitlines() if not line.startswith("make")]
    assert lines == ["error: no AWS credentials: run `aws configure` (or `aws sso login`), or set AWS_PROFILE"]
