"""make lint's scan: what it reports against checkov's accepted baseline, and what it scans."""

from __future__ import annotations

import subprocess

from tools.scan import ROOT, compare_with_baseline, shipped_files

REASON = "CloudWatch Logs encrypts log data at rest by default; access is governed by IAM on the log group."
ACCEPTED = [{"check": "CKV_AWS_158", "resource": "AWS::Logs::LogGroup.TaskLogs", "reason": REASON}]


def test_exactly_the_baseline_passes() -> None:
    assert compare_with_baseline({("CKV_AWS_158", "AWS::Logs::LogGroup.TaskLogs")}, ACCEPTED) == []


def test_a_new_finding_and_a_stale_entry_each_fail() -> None:
    problems = compare_with_baseline({("CKV_AWS_26", "AWS::SNS::Topic.Events")}, ACCEPTED)

    assert problems == [
        "new finding CKV_AWS_26 on AWS::SNS::Topic.Events",
        "accepted CKV_AWS_158 on AWS::Logs::LogGroup.TaskLogs no longer occurs",
    ]


def test_an_entry_needs_a_reason_a_reviewer_could_accept() -> None:
    terse = [{**ACCEPTED[0], "reason": "fine"}]

    assert compare_with_baseline({("CKV_AWS_158", "AWS::Logs::LogGroup.TaskLogs")}, terse) == [
        "accepted CKV_AWS_158 on AWS::Logs::LogGroup.TaskLogs needs a reason"
    ]


def test_every_dockerfile_script_and_workflow_is_scanned() -> None:
    files = shipped_files()

    # Every file of the project's, committed or new, that git does not ignore (cdk.out's staged copies,
    # the venvs and node_modules are ignored).
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    project = [ROOT / name for name in listed]

    assert set(files["dockerfiles"]) == {
        path for path in project if path.name.startswith("Dockerfile") and not path.name.endswith(".dockerignore")
    }

    shell = {path for path in project if path.suffix == ".sh"}
    assert shell <= set(files["scripts"])
    assert (ROOT / ".ci" / "run") in files["scripts"]
    assert set(files["workflows"]) == set((ROOT / ".github" / "workflows").glob("*.y*ml"))
