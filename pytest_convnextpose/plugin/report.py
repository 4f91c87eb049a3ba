"""`--conformance-report PATH`: a JSON verdict per checkpoint (schema: docs/report-schema.md).

Built from test reports only (`pytest_runtest_logreport`), so it works unchanged under
pytest-xdist: workers forward their reports to the controller, which writes the file.
Workers attach the checkpoint's id and description to each report as the attribute
`convnextpose_ckpt` (plain JSON data, which xdist's report serialisation carries along).
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

SCHEMA_VERSION = 1
REPORT_ATTR = "convnextpose_ckpt"
#: user property naming a picture of a failure (pictures.PICTURE_PROPERTY; a literal to keep this module light)
PICTURE_PROPERTY = "convnextpose_picture"


def describe_checkpoint(source: Any, loaded: Any) -> dict[str, Any]:
    """JSON description of a checkpoint source and what loading it gave (Checkpoint or error)."""
    out = source.to_dict()
    out.update(variant=None, nearest_variant=None, variant_differences=[], spec=None, container=None,
               wrapper=None, dialect=None, head_upsample_source=None, num_parameters=None, problems=[],
               load_error=None, archive=None)
    if loaded is None:
        return out
    if isinstance(loaded, Exception):
        out["load_error"] = str(loaded)
        return out
    out.update(variant=loaded.variant, nearest_variant=loaded.nearest_variant,
               variant_differences=list(loaded.variant_differences), spec=loaded.spec.to_dict(),
               container=loaded.container, wrapper=loaded.wrapper, dialect=_dialect_dict(loaded.dialect),
               head_upsample_source=loaded.head_upsample_source, num_parameters=loaded.num_parameters,
               problems=[p.to_dict() for p in loaded.problems],
               archive=(loaded.metadata or {}).get("archive"))  # read from inside a zip/tar/gzip: which, and where
    return out


def _dialect_dict(dialect: Any) -> Any:
    return dialect.to_dict() if hasattr(dialect, "to_dict") else dialect


def outcome_and_message(report: Any) -> tuple[str, str]:
    """Outcome of one phase (`passed`, `failed`, `skipped`, or `error` for setup/teardown failures)
    and a one-paragraph message: the assertion/failure text or the skip reason."""
    if report.passed:
        return "passed", ""
    if report.skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        return "skipped", reason.removeprefix("Skipped: ")
    crash = getattr(report.longrepr, "reprcrash", None)
    message = crash.message if crash is not None else str(report.longrepr)
    return ("failed" if report.when == "call" else "error"), message.strip()


@dataclass
class TestEntry:
    nodeid: str
    outcome: str = "passed"
    message: str = ""
    duration: float = 0.0
    pictures: list[str] = field(default_factory=list)

    def update(self, report: Any) -> None:
        self.duration += float(getattr(report, "duration", 0.0) or 0.0)
        self.pictures += [str(v) for k, v in getattr(report, "user_properties", ()) if k == PICTURE_PROPERTY
                          and str(v) not in self.pictures]
        outcome, message = outcome_and_message(report)
        if outcome == "passed":
            return
        if self.outcome in ("failed", "error") and report.when == "teardown":
            return  # keep the first failure; a teardown error after a failure adds nothing new
        self.outcome, self.message = outcome, message

    def to_dict(self) -> dict[str, Any]:
        out = {"nodeid": self.nodeid, "outcome": self.outcome, "message": self.message,
               "duration_s": round(self.duration, 4)}
        if self.pictures:
            out["pictures"] = list(self.pictures)
        return out


@dataclass(eq=False)  # a plugin object must stay hashable
class ReportCollector:
    """Controller-side plugin object: collects phases per test and writes the JSON at the end."""

    path: Path
    known: dict[str, dict[str, Any]] = field(default_factory=dict)  # ckpt id -> description
    tests: dict[str, TestEntry] = field(default_factory=dict)
    ckpt_of: dict[str, Optional[str]] = field(default_factory=dict)  # nodeid -> ckpt id
    meta: dict[str, Any] = field(default_factory=dict)

    def pytest_runtest_logreport(self, report: Any) -> None:
        entry = self.tests.setdefault(report.nodeid, TestEntry(report.nodeid))
        entry.update(report)
        info = getattr(report, REPORT_ATTR, None)
        if info:
            self.ckpt_of[report.nodeid] = info["id"]
            if info.get("spec") is not None or info["id"] not in self.known or info.get("load_error"):
                self.known[info["id"]] = info
        else:
            self.ckpt_of.setdefault(report.nodeid, None)

    def pytest_sessionfinish(self, session: Any, exitstatus: int) -> None:
        # session.exitstatus, not the argument: the verdict may have turned an all-skipped run into 5
        write_json_atomic(self.path, self.build(int(session.exitstatus)))

    def build(self, exitstatus: int) -> dict[str, Any]:
        per_ckpt: dict[str, list[TestEntry]] = {cid: [] for cid in self.known}
        others: list[TestEntry] = []
        for nodeid, entry in self.tests.items():
            cid = self.ckpt_of.get(nodeid)
            (per_ckpt.setdefault(cid, []) if cid else others).append(entry)
        checkpoints = []
        for cid, entries in per_ckpt.items():
            desc = dict(self.known.get(cid, {"id": cid}))
            desc["counts"] = counts(entries)
            desc["verdict"] = verdict(desc["counts"])
            desc["tests"] = [e.to_dict() for e in entries]
            checkpoints.append(desc)
        all_entries = list(self.tests.values())
        return {
            "schema_version": SCHEMA_VERSION,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            **self.meta,
            "exit_status": exitstatus,
            "counts": counts(all_entries),
            "verdict": verdict(counts(all_entries)),
            "checkpoints": checkpoints,
            "other_tests": {"counts": counts(others), "tests": [e.to_dict() for e in others]},
        }


def counts(entries: list[TestEntry]) -> dict[str, int]:
    out = {"passed": 0, "failed": 0, "skipped": 0, "error": 0}
    for e in entries:
        out[e.outcome] += 1
    out["total"] = len(entries)
    return out


def verdict(c: dict[str, int]) -> str:
    """`fail` if anything failed or errored, `pass` if something passed, else `no-tests`."""
    if c["failed"] or c["error"]:
        return "fail"
    return "pass" if c["passed"] else "no-tests"


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write the report so that a reader never sees half of it (its folder is created if needed)."""
    from ..convert.atomic_output import atomic_write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, data, sort_keys=False)
