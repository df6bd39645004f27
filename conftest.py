"""splitsafe's pytest plugin: ``pytest audits/ --dataset PATH`` audits a dataset.

Wiring only. Options (group "splitsafe"), one settings resolver into a frozen ``AuditConfig``
kept in ``config.stash``, session fixtures for the audits, and the HTML/JSON report written at
session end through ``interpret.audit_report``. The project's own tests (``pytest tests``)
load this file too and never need a dataset: the dataset is required only when tests under
``audits/`` are collected.
"""

from __future__ import annotations

import contextlib
import gc
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from data.findings import Finding
from data.settings import AuditConfig, apply_overrides, config_as_dict, load_audit_config

DEMO_HINT = (
    "no dataset given: run `pytest audits/ --dataset PATH` (PATH: a folder of <split>/<label>/ "
    "images, of <label>/ folders, or a CSV), or set splitsafe_dataset in "
    "[tool.pytest.ini_options]; to try the demo dataset: `python -m data demo demo/` then "
    "`pytest audits/ --dataset demo/movies`"
)
HEADER_SETTINGS = (
    "near_duplicate_similarity",
    "fail_on_duplicates_within_split",
    "scene_similarity",
    "balance_max_ratio",
    "border_min_share_difference",
    "metadata_max_gain",
    "quality_max_share",
    "edge_focus_max",
)


@dataclass
class SplitsafeState:
    """Everything the plugin resolves once per run (kept in ``config.stash``)."""

    config: AuditConfig
    dataset: Path | None  # as given (CLI or ini), None when neither
    dataset_source: str  # "--dataset" or "splitsafe_dataset (ini)"
    dataset_problem: str  # "" or one line saying why the dataset cannot be used
    report_dir: Path
    report_dir_text: str  # as the user wrote it, for messages ("reports")
    cache_dir: Path | None
    model: Path | None
    overridden: dict
    manifest: object = None  # pandas DataFrame once scanned
    audit_nodeids: set = field(default_factory=set)
    rules: dict = field(default_factory=dict)  # nodeid -> rule id (audit_rule marker)
    findings: list = field(default_factory=list)
    outcomes: list = field(default_factory=list)  # skipped / errored audits without a finding
    report_paths: tuple = ()


STATE = pytest.StashKey[SplitsafeState]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("splitsafe", "splitsafe dataset audit")
    group.addoption(
        "--dataset",
        metavar="PATH",
        help="dataset to audit: a folder (<split>/<label>/ or <label>/) or a CSV "
        "(path,label[,split,...])",
    )
    group.addoption(
        "--model", metavar="PATH", help="exported fastai model for the model-focus audit"
    )
    group.addoption(
        "--report-dir",
        metavar="DIR",
        default="reports",
        help="where audit.html, audit.json and data_docs/ are written (default: reports)",
    )
    group.addoption(
        "--splitsafe-set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override one audit setting for this run (repeatable), "
        "e.g. near_duplicate_similarity=0.95",
    )
    group.addoption(
        "--cache-dir",
        metavar="DIR",
        help="feature cache folder (default: $SPLITSAFE_CACHE or ~/.cache/splitsafe)",
    )
    parser.addini(
        "splitsafe_dataset", help="dataset audited when --dataset is not given", default=""
    )


def _parse_overrides(values: list[str]) -> dict:
    overrides = {}
    for text in values:
        key, separator, value = text.partition("=")
        if not separator or not key.strip():
            raise pytest.UsageError(
                f"--splitsafe-set {text!r}: expected KEY=VALUE, e.g. "
                "--splitsafe-set near_duplicate_similarity=0.95"
            )
        overrides[key.strip()] = value.strip()
    try:
        apply_overrides(AuditConfig(), overrides, source="--splitsafe-set")
    except ValueError as error:
        raise pytest.UsageError(f"--splitsafe-set: {error}") from None
    return overrides


def _dataset_option(config: pytest.Config) -> tuple[Path | None, str]:
    given = config.getoption("dataset")
    if given:
        return Path(given).expanduser(), "--dataset"
    configured = config.getini("splitsafe_dataset")
    if configured:
        base = config.inipath.parent if config.inipath else config.rootpath
        return (base / Path(configured).expanduser()), "splitsafe_dataset (ini)"
    return None, ""


def _dataset_problem(dataset: Path | None, source: str) -> str:
    if dataset is None:
        return ""
    if not dataset.exists():
        return f"{source} {dataset}: no such file or folder; give a dataset folder or a CSV"
    if dataset.is_file() and dataset.suffix.lower() != ".csv":
        return f"{source} {dataset}: a file but not a CSV; give a dataset folder or a CSV"
    if not os.access(dataset, os.R_OK):
        return f"{source} {dataset}: not readable (permission denied)"
    return ""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "audit_rule(rule): the report rule id of an audit (used when it is skipped)"
    )
    from data.scan import dataset_root

    overrides = _parse_overrides(config.getoption("splitsafe_set") or [])
    dataset, source = _dataset_option(config)
    problem = _dataset_problem(dataset, source)
    if problem and source == "--dataset":
        raise pytest.UsageError(problem)
    root = dataset_root(dataset) if dataset is not None and not problem else None
    try:
        settings = load_audit_config(
            pyproject=config.rootpath / "pyproject.toml", dataset_root=root, overrides=overrides
        )
    except ValueError as error:
        raise pytest.UsageError(f"splitsafe settings: {error}") from None
    pairs = settings.split_pairs
    if not all(isinstance(pair, (tuple, list)) and len(pair) == 2 for pair in pairs):
        raise pytest.UsageError(
            f"splitsafe setting split_pairs={pairs!r}: expected pairs of splits, "
            'e.g. split_pairs = [["valid", "train"], ["test", "train"]] in splitsafe.toml'
        )
    if settings.metadata_ignore:
        from data.metadata_audit import metadata_columns

        try:
            metadata_columns(ignore=settings.metadata_ignore)
        except ValueError as error:
            raise pytest.UsageError(f"splitsafe settings: {error}") from None
    model = config.getoption("model")
    if model and not Path(model).exists():
        raise pytest.UsageError(f"--model {model}: no such file; give an exported model (.pkl)")
    report_dir_text = config.getoption("report_dir")
    cache_dir = config.getoption("cache_dir")
    config.stash[STATE] = SplitsafeState(
        config=settings,
        dataset=dataset,
        dataset_source=source,
        dataset_problem=problem,
        report_dir=Path(report_dir_text).expanduser(),
        report_dir_text=report_dir_text,
        cache_dir=Path(cache_dir).expanduser() if cache_dir else None,
        model=Path(model) if model else None,
        overridden=overrides,
    )


def _scanned(state: SplitsafeState):
    """The manifest, scanned once; a dataset scan cannot read is a usage error."""
    if state.manifest is None:
        from data.scan import scan

        try:
            state.manifest = scan(state.dataset, split_aliases=state.config.split_aliases)
        except (OSError, ValueError) as error:
            raise pytest.UsageError(f"{state.dataset_source} {state.dataset}: {error}") from None
    return state.manifest


def _dataset_line(manifest) -> str:
    splits = manifest["split"].replace("", "(unsplit)").value_counts().sort_index()
    per_split = ", ".join(f"{name} {int(n)}" for name, n in splits.items())
    skipped = len(manifest.attrs.get("skipped", []))
    return (
        f"{manifest.attrs.get('layout', '?')}, {len(manifest)} images ({per_split or 'none'}), "
        f"{manifest['label'].nunique()} labels, {skipped} non-image files"
    )


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = config.stash.get(STATE, None)
    if state is None or state.dataset is None:
        return None
    if state.dataset_problem:
        return [f"splitsafe: {state.dataset_problem}"]
    manifest = _scanned(state)
    settings = state.config
    thresholds = ", ".join(f"{name}={getattr(settings, name)}" for name in HEADER_SETTINGS)
    lines = [
        f"splitsafe: dataset {state.dataset} ({_dataset_line(manifest)}); seed {settings.seed}",
        f"splitsafe: {thresholds}",
    ]
    if state.overridden:
        lines.append(f"splitsafe: --splitsafe-set {state.overridden}")
    return lines


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "split_pair" in metafunc.fixturenames:
        pairs = metafunc.config.stash[STATE].config.split_pairs
        metafunc.parametrize(
            "split_pair", [tuple(pair) for pair in pairs], ids=[f"{q}-{r}" for q, r in pairs]
        )


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items) -> None:
    state = config.stash[STATE]
    audits = config.rootpath / "audits"
    for item in items:
        if Path(item.path).is_relative_to(audits):
            state.audit_nodeids.add(item.nodeid)
            marker = item.get_closest_marker("audit_rule")
            if marker is not None and marker.args:
                state.rules[item.nodeid] = str(marker.args[0])
    if not state.audit_nodeids:
        return
    if state.dataset is None:
        raise pytest.UsageError(DEMO_HINT)
    if state.dataset_problem:
        raise pytest.UsageError(state.dataset_problem)
    _scanned(state)


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def audit_config(pytestconfig: pytest.Config) -> AuditConfig:
    """The effective audit settings (defaults < pyproject < splitsafe.toml < --splitsafe-set)."""
    return pytestconfig.stash[STATE].config


@pytest.fixture(scope="session")
def manifest(pytestconfig: pytest.Config):
    """The dataset's manifest (``data.scan``), scanned once per session. Do not modify it."""
    return _scanned(pytestconfig.stash[STATE])


@pytest.fixture(scope="session")
def dataset_root(manifest) -> Path:
    """Absolute folder that manifest paths are relative to."""
    return Path(manifest.attrs["root"])


def _keep_until_exit() -> None:
    """Exempt every object alive now from the cyclic garbage collector (``gc.freeze``).

    The audit session's objects (the libraries' modules, the manifest, the 50,000-row feature
    table, later the findings) live until the process exits, yet each full collection walks
    them all again: the report's, and pytest's own at unconfigure. Frozen after the features
    and before the report, 50,000 images took about 1.3 s less CPU (18.3 s instead of 19.6 s,
    two runs each, load 4).
    """
    gc.freeze()


@pytest.fixture(scope="session")
def features(pytestconfig: pytest.Config, manifest, dataset_root):
    """The feature table (``data.features``), computed once per session from the cache."""
    import data

    state = pytestconfig.stash[STATE]
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    visible = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
    with visible:
        print(f"\nsplitsafe: features of {len(manifest)} images", flush=True)
        table = data.features(manifest, dataset_root, cache_dir=state.cache_dir, progress=True)
    _keep_until_exit()
    return table


@pytest.fixture(scope="session")
def duplicate_search(features, audit_config):
    """``(pairs, candidates)`` of the session's one near-duplicate search over all images."""
    from data.duplicate_audit import find_duplicate_pairs

    return find_duplicate_pairs(
        features,
        flip=audit_config.near_duplicate_flip,
        return_candidates=True,
        **audit_config.near_duplicate_rule(),
    )


@pytest.fixture(scope="session")
def duplicate_pairs(duplicate_search):
    """Every copy / near-duplicate pair of the dataset (``data.duplicate_audit``), found once."""
    return duplicate_search[0]


@pytest.fixture(scope="session")
def candidate_pairs(request: pytest.FixtureRequest):
    """The duplicate search's candidates (every pair with descriptor ``|cos|`` at or above
    ``attrs["threshold"]``; columns ``path_a``, ``path_b``, ``similarity``), or None when no
    test of this session runs that search (for one audit alone, its own narrower search is
    cheaper than the all-pairs search and its alignment)."""
    if not any("duplicate_pairs" in item.fixturenames for item in request.session.items):
        return None
    return request.getfixturevalue("duplicate_search")[1]


@pytest.fixture(scope="session")
def model_path(pytestconfig: pytest.Config) -> Path | None:
    """``--model`` as a Path, or None when not given."""
    return pytestconfig.stash[STATE].model


@pytest.fixture(scope="session")
def report_dir(pytestconfig: pytest.Config) -> Path:
    """``--report-dir`` (the folder audit.html is written to; created at session end)."""
    return pytestconfig.stash[STATE].report_dir


@pytest.fixture
def record_finding(request: pytest.FixtureRequest):
    """``record_finding(finding) -> finding``: keep a Finding for the report.

    Fills ``finding.test`` with the test's node id and, unless the finding passed cleanly,
    ends its summary with where the evidence is (``see reports/audit.html#<rule>``).
    """
    state = request.config.stash[STATE]

    def record(finding: Finding) -> Finding:
        finding.test = request.node.nodeid
        if finding.status != "passed":
            link = f"{state.report_dir_text.rstrip('/')}/audit.html#{finding.rule}"
            finding.summary = f"{finding.summary}; see {link}"
        state.findings.append(finding)
        return finding

    return record


# --- outcomes and the report ----------------------------------------------------------------


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        text = str(longrepr[2])
        return text.removeprefix("Skipped: ")
    lines = [line for line in str(report.longreprtext or "").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("E ")]
    return (errors[-1][1:].strip() if errors else (lines[-1] if lines else "")) or "error"


class AuditFailure:
    """A failed audit's report: the finding's summary is the evidence, not a traceback of
    fixture reprs. pytest reads ``reprcrash.message`` for the short summary and JUnit XML."""

    def __init__(self, location: str, message: str):
        self.location, self.message = location, message
        self.reprcrash = self

    def toterminal(self, out) -> None:
        out.line(str(self))

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    report = yield
    state = item.config.stash.get(STATE, None)
    if state is None or item.nodeid not in state.audit_nodeids or hasattr(report, "wasxfail"):
        return report
    rule = state.rules.get(item.nodeid, "")
    recorded = any(f.test == item.nodeid for f in state.findings)
    failure = next((f for f in state.findings if f.test == item.nodeid and not f.passed), None)
    if report.failed and report.when == "call" and failure is not None:
        path, line, _ = item.location
        report.longrepr = AuditFailure(f"{path}:{(line or 0) + 1}", failure.summary)
    if report.skipped:
        entry = {"test": item.nodeid, "status": "skipped", "reason": _reason(report), "rule": rule}
        state.outcomes.append(entry)
    elif report.failed and (report.when != "call" or not recorded):
        entry = {"test": item.nodeid, "status": "error", "reason": _reason(report), "rule": rule}
        state.outcomes.append(entry)
    return report


def _dataset_info(state: SplitsafeState) -> dict:
    info = {"dataset": str(state.dataset), "source": state.dataset_source}
    manifest = state.manifest
    if manifest is not None:
        info.update(
            root=manifest.attrs.get("root", ""),
            layout=manifest.attrs.get("layout", ""),
            images=int(len(manifest)),
            splits={
                (k or "(unsplit)"): int(v) for k, v in manifest["split"].value_counts().items()
            },
            labels=int(manifest["label"].nunique()),
            non_image_files=len(manifest.attrs.get("skipped", [])),
        )
    if state.model is not None:
        info["model"] = str(state.model)
    return info


def pytest_sessionfinish(session: pytest.Session, exitstatus) -> None:
    config = session.config
    state = config.stash.get(STATE, None)
    if state is None or not state.audit_nodeids or hasattr(config, "workerinput"):
        return
    from interpret.audit_report import write_audit_report

    _keep_until_exit()
    root = state.manifest.attrs.get("root") if state.manifest is not None else None
    state.report_paths = write_audit_report(
        state.findings,
        report_dir=state.report_dir,
        config=config_as_dict(state.config),
        dataset=_dataset_info(state),
        dataset_root=root,
        outcomes=state.outcomes,
        max_examples=state.config.report_examples,
    )


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or not state.report_paths:
        return
    statuses = [f.status for f in state.findings] + [o["status"] for o in state.outcomes]
    counts = ", ".join(
        f"{statuses.count(s)} {s}"
        for s in ("failed", "error", "warning", "skipped", "passed")
        if statuses.count(s)
    )
    html_path, json_path = state.report_paths
    terminalreporter.write_sep("-", "splitsafe audit report")
    terminalreporter.write_line(f"{counts or 'no findings'}")
    terminalreporter.write_line(f"report: {html_path}")
    terminalreporter.write_line(f"json:   {json_path}")
