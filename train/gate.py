"""The audit gate: run the data audits (the same suite as ``pytest audits/``) before training.

The suite runs in a subprocess, exactly as a user would run it::

    python -m pytest <repo>/audits --dataset D --report-dir R -q -p no:cacheprovider \\
        -m "not model" --junitxml R/audit-junit.xml

and the findings are read back from ``R/audit.json`` (written by the suite's conftest.py) or,
when that is missing, from the JUnit XML that pytest always writes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
AUDIT_JSON = "audit.json"
AUDIT_JUNIT = "audit-junit.xml"
# pytest's exit codes: 0 all passed, 1 some failed, 5 none collected; others are errors.
_PYTEST_OK, _PYTEST_FAILED, _PYTEST_EMPTY = 0, 1, 5


@dataclass(frozen=True)
class GateResult:
    """What the audit gate found.

    Attributes
    ----------
    status : str
        ``passed`` (every audit passed or was skipped), ``failed`` (one or more audits failed or
        errored), ``error`` (the suite could not run: no audits, a usage error, a crash).
    failures : list of dict
        One per failed audit: ``rule``, ``test``, ``status`` ("failed"/"error"), ``summary``.
    findings : list of dict
        Every audit result read back (same keys), failures included.
    exit_code : int
        pytest's exit code (-1 when not run).
    command : list of str
    output : str
        The last lines of pytest's output (for ``error``).
    """

    status: str
    failures: list[dict] = field(default_factory=list)
    findings: list[dict] = field(default_factory=list)
    exit_code: int = -1
    command: list[str] = field(default_factory=list)
    output: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def as_dict(self) -> dict:
        return {
            "status": self.status,
            "failures": self.failures,
            "findings": self.findings,
            "exit_code": self.exit_code,
            "command": " ".join(self.command),
        }


def audit_command(dataset: Path, report_dir: Path, *, audits: Path | None = None) -> list[str]:
    """The pytest command line the gate runs (``-m "not model"``: data audits only)."""
    return [
        sys.executable,
        "-m",
        "pytest",
        str(audits or REPOSITORY / "audits"),
        "--dataset",
        str(dataset),
        "--report-dir",
        str(report_dir),
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "not model",
        "--junitxml",
        str(Path(report_dir) / AUDIT_JUNIT),
    ]


def run_audit_gate(
    dataset: Path, report_dir: Path, *, audits: Path | None = None, timeout: float | None = None
) -> GateResult:
    """Run the audit suite on ``dataset`` and read its findings back.

    Stale ``audit.json`` / JUnit files in ``report_dir`` are removed first, so what is read back
    is always this run's.
    """
    audits = Path(audits or REPOSITORY / "audits")
    report_dir = Path(report_dir).resolve()
    report_dir.mkdir(parents=True, exist_ok=True)
    if not audits.is_dir() or not any(audits.glob("test_*.py")):
        return GateResult(
            "error", output=f"no audit suite at {audits} (expected test_*.py files there)"
        )
    for name in (AUDIT_JSON, AUDIT_JUNIT):
        (report_dir / name).unlink(missing_ok=True)
    command = audit_command(Path(dataset).resolve(), report_dir, audits=audits)
    completed = subprocess.run(
        command, cwd=REPOSITORY, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = _tail(completed.stdout + completed.stderr)
    return interpret_audit_run(completed.returncode, report_dir, command=command, output=output)


def interpret_audit_run(
    exit_code: int, report_dir: Path, *, command: list[str] | None = None, output: str = ""
) -> GateResult:
    """Turn pytest's exit code and the files it wrote into a GateResult (pure but for reading
    ``audit.json`` or the JUnit XML in ``report_dir``)."""
    report_dir = Path(report_dir)
    command = command or []
    if exit_code not in (_PYTEST_OK, _PYTEST_FAILED, _PYTEST_EMPTY):
        return GateResult("error", exit_code=exit_code, command=command, output=output)
    if exit_code == _PYTEST_EMPTY:
        return GateResult(
            "error",
            exit_code=exit_code,
            command=command,
            output="the audit suite collected no tests\n" + output,
        )
    if (report_dir / AUDIT_JSON).is_file():
        findings = read_audit_json(report_dir / AUDIT_JSON)
    elif (report_dir / AUDIT_JUNIT).is_file():
        findings = read_junit(report_dir / AUDIT_JUNIT)
    else:
        return GateResult(
            "error",
            exit_code=exit_code,
            command=command,
            output=f"pytest wrote neither {AUDIT_JSON} nor {AUDIT_JUNIT}\n" + output,
        )
    failures = [f for f in findings if f["status"] in ("failed", "error")]
    if exit_code == _PYTEST_FAILED and not failures:  # the files disagree with pytest: trust it
        failures = [
            {
                "rule": "unknown",
                "test": "",
                "status": "failed",
                "summary": "pytest reported failures; see " + str(report_dir),
            }
        ]
    status = "failed" if failures else "passed"
    return GateResult(status, failures, findings, exit_code, command, output)


def read_audit_json(path: Path) -> list[dict]:
    """Findings from the suite's ``audit.json``: a list of findings, or a dict holding one under
    ``findings``; each with ``rule``, ``test``, ``status``, ``summary``."""
    try:
        content = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    entries = content.get("findings", []) if isinstance(content, dict) else content
    return [
        {
            "rule": str(entry.get("rule", "")),
            "test": str(entry.get("test", "")),
            "status": str(entry.get("status", "")),
            "summary": str(entry.get("summary", "")),
        }
        for entry in entries
    ]


def read_junit(path: Path) -> list[dict]:
    """Findings from pytest's JUnit XML: one per test case; the rule is the test's name
    (``test_no_near_duplicate_crosses_splits``), the summary the failure message."""
    try:
        tree = ElementTree.parse(path)
    except ElementTree.ParseError as error:
        raise ValueError(f"{path}: not valid JUnit XML ({error})") from None
    findings = []
    for case in tree.iter("testcase"):
        status, summary = "passed", ""
        for tag, name in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            element = case.find(tag)
            if element is not None:
                status = name
                summary = element.get("message") or (element.text or "")
                break
        findings.append(
            {
                "rule": case.get("name", ""),
                "test": f"{case.get('classname', '')}::{case.get('name', '')}".strip(":"),
                "status": status,
                "summary": summary.strip(),
            }
        )
    return findings


def describe_gate(result: GateResult) -> str:
    """Terminal lines: the status, then one line per failing rule with its summary's first line."""
    if result.status == "passed":
        return f"audit gate: passed ({len(result.findings)} audits)"
    if result.status == "error":
        return "audit gate: the audit suite could not run\n" + result.output
    lines = [f"audit gate: {len(result.failures)} audit(s) failed"]
    for failure in result.failures:
        first = (failure["summary"].splitlines() or [""])[0]
        lines.append(f"  FAILED {failure['rule']}: {first[:300]}")
    return "\n".join(lines)


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
