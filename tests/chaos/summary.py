"""The chaos matrix's figures, and the tamper matrix's beside them: per run, then per scenario
(per case) and in total, as JSON and markdown."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
#: Where `make chaos` (and the slice in `make test`) leaves the summary.
OUTPUT = ROOT / "test-output" / "chaos"


@dataclass(frozen=True)
class RunFigures:
    scenario: str
    server: str
    seed: int
    exit_code: int
    planned: int
    deleted: int
    #: Requests that got a request-level fault, by fault.
    faults: dict[str, int]
    #: Per-key errors injected into DeleteObjects answers.
    key_faults: int
    wrongly_deleted: int
    unaccounted: int
    misreported: int
    #: Planned objects a sequence of runs should have deleted in the end and left.
    left_behind: int
    problems: list[str]
    #: The known wrong behaviour this run is expected to show, if any.
    finding: str | None
    duration_s: float

    @property
    def clean(self) -> bool:
        return not self.problems


def first_of(problems: list[str], shown: int = 3) -> str:
    """The first problems, and how many more (a wrong run can name hundreds of objects)."""
    more = len(problems) - shown
    return "; ".join(problems[:shown]) + (f"; and {more} more" if more > 0 else "")


@dataclass(frozen=True)
class TamperFigures:
    """One run of the tamper matrix: a plan source, a tampering, a seed."""

    source: str
    tampering: str
    seed: int
    exit_code: int
    expected_exit_code: int
    planned: int
    deleted: int
    skipped: int
    wrongly_deleted: int
    unaccounted: int
    misreported: int
    problems: list[str]
    finding: str | None
    duration_s: float

    @property
    def clean(self) -> bool:
        return not self.problems


@dataclass
class Summary:
    runs: list[RunFigures] = field(default_factory=list)
    tampered: list[TamperFigures] = field(default_factory=list)

    def add(self, figures: RunFigures) -> None:
        self.runs.append(figures)

    def add_tampered(self, figures: TamperFigures) -> None:
        self.tampered.append(figures)

    def totals(self) -> dict[str, Any]:
        faults = Counter[str]()
        for run in self.runs:
            faults.update(run.faults)
        return {
            "runs": len(self.runs),
            "scenarios": len({(run.scenario, run.server) for run in self.runs}),
            "clean_runs": sum(run.clean for run in self.runs),
            "runs_with_known_findings": sum(run.finding is not None for run in self.runs),
            "request_faults_injected": sum(faults.values()),
            "request_faults_by_kind": dict(sorted(faults.items())),
            "key_faults_injected": sum(run.key_faults for run in self.runs),
            "planned_objects": sum(run.planned for run in self.runs),
            "objects_deleted": sum(run.deleted for run in self.runs),
            "objects_wrongly_deleted": sum(run.wrongly_deleted for run in self.runs),
            "planned_objects_unaccounted_for": sum(run.unaccounted for run in self.runs),
            "planned_objects_misreported": sum(run.misreported for run in self.runs),
            "planned_objects_left_behind": sum(run.left_behind for run in self.runs),
        }

    def scenarios(self) -> list[dict[str, Any]]:
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for run in self.runs:
            row = rows.setdefault(
                (run.scenario, run.server),
                {
                    "scenario": run.scenario,
                    "server": run.server,
                    "seeds": 0,
                    "clean": 0,
                    "faults": 0,
                    "exit_codes": Counter[int](),
                    "wrongly_deleted": 0,
                    "unaccounted": 0,
                    "misreported": 0,
                    "finding": run.finding,
                },
            )
            row["seeds"] += 1
            row["clean"] += run.clean
            row["faults"] += sum(run.faults.values()) + run.key_faults
            row["exit_codes"][run.exit_code] += 1
            row["wrongly_deleted"] += run.wrongly_deleted
            row["unaccounted"] += run.unaccounted
            row["misreported"] += run.misreported
        return [
            {**row, "exit_codes": dict(sorted(row["exit_codes"].items()))} for row in rows.values()
        ]

    def tamper_totals(self) -> dict[str, Any]:
        runs = self.tampered
        return {
            "runs": len(runs),
            "cases": len({(run.source, run.tampering) for run in runs}),
            "sources": len({run.source for run in runs}),
            "clean_runs": sum(run.clean for run in runs),
            "runs_with_known_findings": sum(run.finding is not None for run in runs),
            "runs_refused_or_invalid": sum(run.exit_code != 0 for run in runs),
            "planned_objects": sum(run.planned for run in runs),
            "objects_deleted": sum(run.deleted for run in runs),
            "planned_objects_skipped_as_changed": sum(run.skipped for run in runs),
            "objects_wrongly_deleted": sum(run.wrongly_deleted for run in runs),
            "of_which_in_runs_with_known_findings": sum(
                run.wrongly_deleted for run in runs if run.finding is not None
            ),
            "planned_objects_unaccounted_for": sum(run.unaccounted for run in runs),
            "planned_objects_misreported": sum(run.misreported for run in runs),
        }

    def tamper_cases(self) -> list[dict[str, Any]]:
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for run in self.tampered:
            row = rows.setdefault(
                (run.source, run.tampering),
                {
                    "source": run.source,
                    "tampering": run.tampering,
                    "seeds": 0,
                    "clean": 0,
                    "expected_exit_code": run.expected_exit_code,
                    "exit_codes": Counter[int](),
                    "planned": 0,
                    "deleted": 0,
                    "skipped": 0,
                    "wrongly_deleted": 0,
                    "unaccounted": 0,
                    "finding": run.finding,
                },
            )
            row["seeds"] += 1
            row["clean"] += run.clean
            row["exit_codes"][run.exit_code] += 1
            for name in ("planned", "deleted", "skipped", "wrongly_deleted", "unaccounted"):
                row[name] += getattr(run, name)
        return [
            {**row, "exit_codes": dict(sorted(row["exit_codes"].items()))}
            for _, row in sorted(rows.items())
        ]

    def to_json(self) -> str:
        matrix: dict[str, Any] = {}
        if self.runs:
            matrix = {
                "totals": self.totals(),
                "scenarios": self.scenarios(),
                "runs": [asdict(run) for run in self.runs],
            }
        if self.tampered:
            matrix["tamper_matrix"] = {
                "totals": self.tamper_totals(),
                "cases": self.tamper_cases(),
                "runs": [asdict(run) for run in self.tampered],
            }
        return json.dumps(matrix, indent=2)

    def to_markdown(self) -> str:
        sections = []
        if self.runs:
            sections.append(self.chaos_markdown())
        if self.tampered:
            sections.append(self.tamper_markdown())
        return "\n".join(sections)

    def tamper_markdown(self) -> str:
        lines = [
            "# Tamper matrix",
            "",
            "| measure | value |",
            "|---|---|",
            *(
                f"| {name.replace('_', ' ')} | {value} |"
                for name, value in self.tamper_totals().items()
            ),
            "",
            "| source | tampering | seeds | clean | expected exit | exit codes | planned "
            "| deleted | skipped | wrongly deleted | unaccounted |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in self.tamper_cases():
            codes = ", ".join(f"{code}: {n}" for code, n in row["exit_codes"].items())
            name = row["tampering"] + (" (known finding)" if row["finding"] else "")
            lines.append(
                f"| {row['source']} | {name} | {row['seeds']} | {row['clean']} | "
                f"{row['expected_exit_code']} | {codes} | {row['planned']} | {row['deleted']} | "
                f"{row['skipped']} | {row['wrongly_deleted']} | {row['unaccounted']} |"
            )
        findings: dict[str, set[str]] = {}
        for run in self.tampered:
            if run.finding:
                findings.setdefault(run.finding, set()).add(f"{run.source} x {run.tampering}")
        if findings:
            lines += ["", "Known findings (xfail, strict):", ""]
            lines += [
                f"- {finding} ({', '.join(sorted(cases))})" for finding, cases in findings.items()
            ]
        problems = [run for run in self.tampered if run.problems]
        if problems:
            lines += ["", "What the oracle found:", ""]
            lines += [
                f"- {run.source} x {run.tampering}, seed {run.seed}: {first_of(run.problems)}"
                for run in problems
            ]
        return "\n".join(lines) + "\n"

    def chaos_markdown(self) -> str:
        totals = self.totals()
        lines = [
            "# Chaos matrix",
            "",
            "| measure | value |",
            "|---|---|",
            *(f"| {name.replace('_', ' ')} | {value} |" for name, value in totals.items()),
            "",
            "| scenario | server | seeds | clean | faults | exit codes | wrongly deleted "
            "| unaccounted | misreported |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in self.scenarios():
            codes = ", ".join(f"{code}: {n}" for code, n in row["exit_codes"].items())
            name = row["scenario"] + (" (known finding)" if row["finding"] else "")
            lines.append(
                f"| {name} | {row['server']} | {row['seeds']} | {row['clean']} | "
                f"{row['faults']} | {codes} | {row['wrongly_deleted']} | {row['unaccounted']} "
                f"| {row['misreported']} |"
            )
        findings = sorted(
            {(run.scenario, run.server, run.finding) for run in self.runs if run.finding}
        )
        if findings:
            lines += ["", "Known findings (xfail, strict):", ""]
            lines += [f"- {name} on {server}: {finding}" for name, server, finding in findings]
        problems = [run for run in self.runs if run.problems]
        if problems:
            lines += ["", "What the oracle found:", ""]
            lines += [
                f"- {run.scenario} on {run.server}, seed {run.seed}: {'; '.join(run.problems)}"
                for run in problems
            ]
        return "\n".join(lines) + "\n"

    def write(self, directory: Path = OUTPUT) -> list[Path]:
        directory.mkdir(parents=True, exist_ok=True)
        paths = [directory / "summary.json", directory / "summary.md"]
        paths[0].write_text(self.to_json() + "\n")
        paths[1].write_text(self.to_markdown())
        return paths
