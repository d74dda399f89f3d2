"""`make lint`'s scanners over what the project ships: every variant's template (cfn-lint, and checkov
against the accepted baseline), every Dockerfile (hadolint), every shell script and every variant's
rendered user data (shellcheck), and the GitHub workflows (actionlint).

The scanners live in a venv of their own (.lint-venv, requirements-lint.txt): checkov pins a boto3 of
2024 (``boto3==1.35.49`` in its metadata) that the client cannot use. Each scanner prints what it
checked and what it found; the exit status is 1 if any found anything.

    python -m tools.scan --lint-venv .lint-venv
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHECKOV_BASELINE = ROOT / "security" / "checkov-baseline.json"
CFN_LINT_REGIONS = ("us-east-1", "us-west-2")
# What the rendered user data's references stand for, as CloudFormation would fill them.
RENDERED_REFERENCES = {"Cluster": "bert-cluster-lint"}


def synthesize_variants() -> dict[str, dict[str, Any]]:
    """Every variant's template, synthesized with cdk.json's context as `cdk synth` does."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    import aws_cdk as cdk  # noqa: PLC0415  (jsii starts only for the scan)
    from aws_cdk.assertions import Template  # noqa: PLC0415

    from app import build_app  # noqa: PLC0415
    from tools.variants import VARIANTS  # noqa: PLC0415

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    templates = {}
    # The app's own warnings (no model baked in, ...) would repeat for every variant: they are synth's
    # business, not the scan's. jsii's node process writes them to this process's stderr.
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as quiet:
            os.dup2(quiet.fileno(), 2)
            for name, overrides in sorted(VARIANTS.items()):
                app = cdk.App(context={**context, **overrides})
                templates[name] = dict(Template.from_stack(build_app(app)).to_json())
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return templates


def render_user_data(template: Mapping[str, Any], references: Mapping[str, str] = RENDERED_REFERENCES) -> str:
    """The launch template's user data with its references filled in as CloudFormation would."""
    (launch_template,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::EC2::LaunchTemplate"]
    parts = launch_template["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Join"][1]
    rendered = []
    for part in parts:
        if isinstance(part, str):
            rendered.append(part)
        else:
            (value,) = [value for prefix, value in references.items() if part["Ref"].startswith(prefix)]
            rendered.append(value)
    return "".join(rendered)


def compare_with_baseline(found: Iterable[tuple[str, str]], accepted: Sequence[Mapping[str, str]]) -> list[str]:
    """What differs from the accepted checkov findings: a new finding, an entry that no longer occurs,
    or an entry without a reason a reviewer could accept."""
    found, listed = set(found), {(entry["check"], entry["resource"]) for entry in accepted}
    problems = [f"new finding {check} on {resource}" for check, resource in sorted(found - listed)]
    problems += [f"accepted {check} on {resource} no longer occurs" for check, resource in sorted(listed - found)]
    problems += [f"accepted {e['check']} on {e['resource']} needs a reason" for e in accepted if len(e["reason"]) < 60]
    return problems


def _run(command: Sequence[str], **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, check=False, timeout=600, **options)


def cfn_lint(binary: Path, templates: Mapping[str, Path]) -> list[str]:
    result = _run(
        [str(binary), "--format", "parseable", "--regions", *CFN_LINT_REGIONS, "--", *map(str, templates.values())]
    )
    return [line for line in result.stdout.splitlines() if line.strip()] or (
        [] if result.returncode == 0 else [result.stderr]
    )


def checkov(binary: Path, directory: Path) -> list[str]:
    result = _run(
        [
            str(binary),
            "-d",
            str(directory),
            "--framework",
            "cloudformation",
            "-o",
            "json",
            "--quiet",
            "--skip-download",
        ],
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    if result.returncode not in (0, 1):
        return [f"checkov did not run: {result.stderr[-500:]}"]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    if sum(report["summary"]["resource_count"] for report in reports) == 0:
        return ["checkov read no resource"]
    found = {(f["check_id"], f["resource"]) for report in reports for f in report["results"]["failed_checks"]}
    return compare_with_baseline(found, json.loads(CHECKOV_BASELINE.read_text())["accepted"])


def hadolint(binary: Path, dockerfiles: Sequence[Path]) -> list[str]:
    findings = []
    for dockerfile in dockerfiles:
        result = _run([str(binary), "--format", "tty", "--no-color", str(dockerfile)])
        findings += [line for line in result.stdout.splitlines() if line.strip()]
    return findings


def shellcheck(binary: Path, scripts: Sequence[Path], rendered: Mapping[str, str]) -> list[str]:
    findings = []
    result = _run([str(binary), "--format=gcc", *map(str, scripts)])
    findings += [line for line in result.stdout.splitlines() if line.strip()]
    for variant, script in rendered.items():
        result = _run([str(binary), "--shell=bash", "--format=gcc", "-"], input=script)
        findings += [f"user data of {variant}: {line}" for line in result.stdout.splitlines() if line.strip()]
    return findings


def actionlint(binary: Path, workflows: Sequence[Path]) -> list[str]:
    result = _run([str(binary), "-no-color", "-oneline", *map(str, workflows)])
    return [line for line in result.stdout.splitlines() if line.strip()]


def shipped_files() -> dict[str, list[Path]]:
    return {
        "dockerfiles": sorted(
            p
            for p in [*ROOT.glob("components/*/runtime/Dockerfile*"), *ROOT.glob("modelbuild/compiler/Dockerfile*")]
            if p.suffix != ".dockerignore"
        ),
        "scripts": sorted(
            {
                *ROOT.glob("components/**/*.sh"),
                *ROOT.glob("tools/*.sh"),
                ROOT / ".ci" / "run",
            }
        ),
        "workflows": sorted((ROOT / ".github" / "workflows").glob("*.yml")),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.scan", description=__doc__.splitlines()[0])
    parser.add_argument("--lint-venv", type=Path, default=ROOT / ".lint-venv")
    args = parser.parse_args(argv)
    tool = args.lint_venv.resolve() / "bin"
    files = shipped_files()
    print("synthesizing every variant for the scanners (about half a minute)", flush=True)
    templates = synthesize_variants()
    with tempfile.TemporaryDirectory(prefix="scan-") as workdir:
        paths = {}
        for name, template in templates.items():
            paths[name] = Path(workdir) / f"{name}.template.json"
            paths[name].write_text(json.dumps(template))
        rendered = {name: render_user_data(t) for name, t in templates.items() if _has_launch_template(t)}
        scans: list[tuple[str, Callable[[], list[str]], str]] = [
            ("cfn-lint", lambda: cfn_lint(tool / "cfn-lint", paths), f"{len(paths)} templates"),
            (
                "checkov",
                lambda: checkov(tool / "checkov", Path(workdir)),
                f"{len(paths)} templates, against the baseline",
            ),
            (
                "hadolint",
                lambda: hadolint(tool / "hadolint", files["dockerfiles"]),
                f"{len(files['dockerfiles'])} Dockerfiles",
            ),
            (
                "shellcheck",
                lambda: shellcheck(tool / "shellcheck", files["scripts"], rendered),
                f"{len(files['scripts'])} scripts and {len(rendered)} variants' user data",
            ),
            (
                "actionlint",
                lambda: actionlint(tool / "actionlint", files["workflows"]),
                f"{len(files['workflows'])} workflows",
            ),
        ]
        failed = 0
        for name, scan, scope in scans:
            findings = scan()
            print(f"{name}: {scope}: {len(findings)} finding{'' if len(findings) == 1 else 's'}", flush=True)
            for finding in findings:
                print(f"  {finding}")
            failed += bool(findings)
    return 1 if failed else 0


def _has_launch_template(template: Mapping[str, Any]) -> bool:
    return any(r["Type"] == "AWS::EC2::LaunchTemplate" for r in template["Resources"].values())


if __name__ == "__main__":
    sys.exit(main())
