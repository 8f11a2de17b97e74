"""How each source of the tamper matrix makes a plan and applies it with the installed command,
with the case's tampering in between (or while the run waits for approval), and what the oracle
needs of the run: the bucket before and after, the plan the run applied, its report and code.

Which plan the oracle holds the run to is the source's: the file as tampered when the run reads
it then (a saved plan, a cluster's parts); the plan as it was when the run read it, before it
was edited during the pause (a live listing, a saved plan approved, a fleet's plans); the plan
the run wrote from an inventory's rows (checked against the rows' own selection).
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote_plus

from devtools.processes import BIN
from tests.chaos.oracle import LOCK_KEY, Plan, RunEvidence, Snapshot, read_plan
from tests.chaos.tampered_files import (
    InventoryDataFile,
    PlanFile,
    PlanIndexFile,
    PlanPart,
    TamperedFile,
    data_file_rows,
    inventory_stamp,
)
from tests.chaos.tamperings import BucketView, TamperCase
from tests.chaos.targets import OLDER_THAN_DAYS, PREFIX, Filled, Layout, MotoTarget, ObjectState
from tests.support.approval import answer
from tests.support.fault_proxy import FaultProxy
from tests.support.inventory import WrittenInventory, put_inventory, row

#: The longest one run of the command may take.
RUN_TIMEOUT_S = 240
#: How long a paused run waits for its answer: the matrix answers within seconds.
APPROVAL = ("--require-approval", "--approval-timeout-minutes", "4")
#: Where it matters that the plan holds more than one delete batch: a file read whole before
#: the first delete, rows confirmed batch by batch.
BATCHES = Layout(old_direct=600, old_nested=500, young=40, beside=20, elsewhere=20)
#: Elsewhere, a few hundred objects.
SMALL = Layout(old_direct=150, old_nested=150, young=20, beside=10, elsewhere=10)
#: The cases in a fleet run besides its tampered targets: one untampered target.
UNTAMPERED = "untampered"


@dataclass(frozen=True)
class Executed:
    """One case's run, with what the source's own checks found wrong (empty: nothing)."""

    evidence: RunEvidence
    problems: list[str]
    duration_s: float
    #: A fleet's untampered target, judged beside the tampered one.
    others: tuple[RunEvidence, ...] = ()


@dataclass
class Bench:
    """What one case runs against: its bucket, its runs' environment and folder."""

    #: None: a fleet's untampered target.
    case: TamperCase | None
    seed: int
    target: MotoTarget
    filled: Filled
    #: The runs' environment, going straight to the S3 server.
    env: dict[str, str]
    workdir: Path
    api_url: str
    dask_address: str | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def source(self) -> str:
        return self.case.source if self.case is not None else "fleet"

    @property
    def plans(self) -> Path:
        return Path(self.env["MANIFEST_LOCATION"])

    def arguments(self) -> list[str]:
        return [
            *("run", "--bucket", self.filled.bucket, "--prefix", PREFIX),
            *("--older-than-days", str(OLDER_THAN_DAYS), "--as-of", self.filled.as_of.isoformat()),
            "--no-create-bucket",
        ]

    def objects(self) -> dict[str, ObjectState]:
        """Every object of the bucket, straight from the server."""
        return self.target.snapshot(self.filled.bucket)

    def snapshot(self) -> Snapshot:
        return cast(Snapshot, self.objects())

    def view(self) -> BucketView:
        return BucketView.of(self.objects(), PREFIX, self.filled.cutoff)

    def tamper(self, file: TamperedFile, *, files: Callable[[], bytes]) -> None:
        """The case's tampering, with the seed's choices; `files` reads everything it may
        change: a tampering that changes nothing would prove nothing."""
        assert self.case is not None
        before = hashlib.sha256(files()).hexdigest()
        self.case.tampering.edit(file, self.view(), random.Random(self.seed))  # noqa: S311
        if hashlib.sha256(files()).hexdigest() == before:
            raise RuntimeError(f"{self.case.name} left the files as they were")

    def evidence(
        self,
        code: int,
        stderr: str,
        report: dict[str, Any] | None,
        plan: Plan | None,
        before: Snapshot,
        exchanges: Any = (),
        fresh: bool = False,
    ) -> RunEvidence:
        return RunEvidence(
            code=code,
            report=report,
            plan=plan,
            before=before,
            after=self.snapshot(),
            prefix=PREFIX,
            cutoff=self.filled.cutoff,
            exchanges=tuple(exchanges),
            fresh_plan=fresh,
            said=last_words(stderr),
            stderr=stderr,
        )


def command(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "s3-housekeeping"), *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def dry_run(bench: Bench, *options: str) -> dict[str, Any]:
    """A dry run's report (it keeps its plan where MANIFEST_LOCATION says)."""
    path = bench.workdir / "dry-run.json"
    done = command(*bench.arguments(), *options, "--report-json", str(path), env=bench.env)
    if done.returncode != 0:
        raise RuntimeError(f"the dry run failed ({done.returncode}): {done.stderr[-2000:]}")
    report: dict[str, Any] = json.loads(path.read_text())
    return report


def last_words(stderr: str) -> str:
    """The command's last line on stderr, without the (machine-local) manifest path."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return lines[-1].split("; manifest ")[0] if lines else ""


def report_at(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def plan_written(report: dict[str, Any] | None, plans: Path) -> Plan | None:
    """The plan the run wrote: the one its report names, or the last one it left."""
    if report is not None and report.get("manifest"):
        return read_plan(Path(report["manifest"]))
    written = sorted(plans.rglob("*.jsonl.gz"), key=lambda path: path.stat().st_mtime)
    return read_plan(written[-1]) if written else None


# --- a person answering a paused run, through the Prefect API as the UI does ------------------


def api(api_url: str, route: str, body: Mapping[str, Any]) -> Any:
    """POST JSON; a 503 (the SQLite server busy) is tried again, as Prefect's client does."""
    request = urllib.request.Request(  # noqa: S310 - the matrix's own loopback server
        f"{api_url}/{route}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    # A busy two-core machine has kept it busy for over three seconds: up to about 30 s.
    for attempt in range(1, 9):
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                text = response.read()
                return json.loads(text) if text else None
        except urllib.error.HTTPError as error:
            if error.code != 503 or attempt == 8:
                raise
            time.sleep(min(attempt, 5))
    raise AssertionError("unreachable")


def paused_run(
    api_url: str, matches: Callable[[Mapping[str, Any]], bool], process: subprocess.Popen[bytes]
) -> str | None:
    """The id of the paused flow run whose parameters `matches`, once it is paused; None if
    the process ends first."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    body = {"flow_runs": {"state": {"type": {"any_": ["PAUSED"]}}}, "limit": 200}
    while process.poll() is None and time.monotonic() < deadline:
        for found in api(api_url, "flow_runs/filter", body):
            if matches(found["parameters"]):
                return str(found["id"])
        time.sleep(0.5)
    return None


def resume(api_url: str, run_id: str) -> None:
    """Approve the paused run. Prefect marks a run paused before it saves the schema of its
    form: an answer in between is refused ("Run input schema not found") and the run goes on
    waiting, so a refused answer is given again."""
    deadline = time.monotonic() + 60
    run_input = answer(True, "tamper matrix")
    while True:
        outcome = api(api_url, f"flow_runs/{run_id}/resume", {"run_input": run_input})
        if outcome["status"] == "ACCEPT":
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"flow run {run_id} was not resumed: {outcome['details']}")
        time.sleep(0.5)


@dataclass(frozen=True)
class Answered:
    """A run that asked for approval: how it ended, and whether it paused at all."""

    code: int
    stderr: str
    paused: bool


def approved(
    bench: Bench,
    arguments: list[str],
    env: Mapping[str, str],
    matches: Callable[[Mapping[str, Any]], bool],
    during: Callable[[], None],
) -> Answered:
    """Run the command, and once it waits for approval: `during`, then approve."""
    stdout, stderr = bench.workdir / "approved.log", bench.workdir / "approved.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [str(BIN / "s3-housekeeping"), *arguments], env=dict(env), stdout=out, stderr=err
        )
    try:
        run_id = paused_run(bench.api_url, matches, process)
        if run_id is not None:
            during()
            resume(bench.api_url, run_id)
        code = process.wait(RUN_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
    return Answered(code, stderr.read_text(), run_id is not None)


def of_bucket(bucket: str) -> Callable[[Mapping[str, Any]], bool]:
    return lambda parameters: parameters.get("bucket") == bucket


def kept_plan(plans: Path, bucket: str) -> Path:
    """The one plan a run (or a fleet's dry run) kept for the bucket."""
    (found,) = (plans / bucket).glob("*.jsonl.gz")
    return found


# --- the sources ------------------------------------------------------------------------------


def apply_through_proxy(
    bench: Bench,
    options: list[str],
    plan: Callable[[dict[str, Any] | None], Plan | None],
    fresh: bool = False,
    during: Callable[[], None] | None = None,
) -> Executed:
    """The executing run, through a proxy that records its requests; `during`: it asks for
    approval, and that happens while it waits. `plan` gives the plan to judge it by, from
    its report."""
    before = bench.snapshot()
    report_path = bench.workdir / "report.json"
    arguments = [*bench.arguments(), "--execute", *options, "--report-json", str(report_path)]
    problems = []
    with FaultProxy(bench.target.endpoint_url, seed=bench.seed) as proxy:
        env = {**bench.env, "AWS_ENDPOINT_URL": proxy.url}
        if during is None:
            done = command(*arguments, env=env)
            code, stderr = done.returncode, done.stderr
        else:
            answered = approved(bench, arguments, env, of_bucket(bench.filled.bucket), during)
            code, stderr = answered.code, answered.stderr
            if not answered.paused:
                problems.append(f"the run never waited for approval (exit {code})")
        exchanges = list(proxy.exchanges)
    report = report_at(report_path)
    # A refused run's one delete may be that of its own lease, given back.
    deletes = [
        e
        for e in exchanges
        if e.operation == "DeleteObjects"
        or (e.operation == "DeleteObject" and e.object_key != LOCK_KEY)
    ]
    if code != 0 and deletes:
        problems.append(f"the run ended {code} and sent {len(deletes)} delete requests")
    evidence = bench.evidence(code, stderr, report, plan(report), before, exchanges, fresh)
    return Executed(evidence, problems, round(time.monotonic() - bench.started, 1))


def live(bench: Bench) -> Executed:
    """`run --execute --require-approval`: the plan it kept is edited while it waits; it must
    apply the plan it made and showed."""
    shown: dict[str, Plan] = {}

    def during() -> None:
        kept = kept_plan(bench.plans, bench.filled.bucket)
        copy = bench.workdir / "as-planned.jsonl.gz"
        shutil.copyfile(kept, copy)
        shown["plan"] = read_plan(copy)
        bench.tamper(PlanFile(kept), files=kept.read_bytes)

    return apply_through_proxy(
        bench,
        list(APPROVAL),
        lambda report: shown.get("plan") or plan_written(report, bench.plans),
        fresh=True,
        during=during,
    )


def saved(bench: Bench) -> Executed:
    """A dry run keeps its plan; it is edited (before the apply, or while the apply waits for
    approval), then applied with --plan (and the dry run's digest, for saved-digest; under a
    keep rule, and without the digest, for saved-keep)."""
    rules = ["--keep-newest", "1"] if bench.source == "saved-keep" else []
    dry = dry_run(bench, *rules)
    path = Path(dry["manifest"])

    def edit() -> None:
        bench.tamper(PlanFile(path), files=path.read_bytes)

    options = [*rules, "--plan", str(path)]
    if bench.source == "saved-digest":
        options += ["--plan-sha256", dry["manifest_sha256"]]
    if bench.source == "saved-approved":
        as_read = read_plan(path)
        return apply_through_proxy(
            bench, [*options, *APPROVAL], lambda report: as_read, during=edit
        )
    edit()
    as_tampered = read_plan(path)
    return apply_through_proxy(bench, options, lambda report: as_tampered)


def inventory_rows(s3: Any, written: WrittenInventory) -> list[dict[str, str]]:
    """Every row of the inventory's data files, as they are now."""
    destination = written.manifest_uri.removeprefix("s3://").split("/", 1)[0]
    return [
        found
        for key in written.data_keys
        for found in data_file_rows(s3.get_object(Bucket=destination, Key=key)["Body"].read())
    ]


def selected_rows(rows: list[dict[str, str]], bucket: str, cutoff: datetime) -> dict[str, str]:
    """What a plan from these rows holds: the rows of the bucket under the prefix dated before
    the cutoff, by key, with their ETags as a listing quotes them."""
    return {
        unquote_plus(found["Key"]): f'"{found["ETag"]}"'
        for found in rows
        if found["Bucket"] == bucket
        and unquote_plus(found["Key"]).startswith(PREFIX)
        and datetime.fromisoformat(found["LastModifiedDate"]) < cutoff
    }


def inventory(bench: Bench) -> Executed:
    """An S3 Inventory of the bucket (two data files, rows for every object with its real
    ETag, size and date) and another bucket's; a data file edited (and vouched for in the
    manifest, for inventory-vouched), then `run --execute --inventory`."""
    s3, bucket = bench.target.client(), bench.filled.bucket
    destination = f"{bucket}-inventory"
    s3.create_bucket(Bucket=destination)
    rows = [
        row(
            key,
            Size=str(found.size),
            LastModifiedDate=inventory_stamp(found.last_modified),
            ETag=found.etag.strip('"'),
        )
        for key, found in sorted(bench.objects().items())
    ]
    created = bench.filled.as_of - timedelta(minutes=5)
    written = put_inventory(s3, destination, bucket, [rows[0::2], rows[1::2]], created=created)
    other = put_inventory(
        s3, destination, f"{bucket}-replica", [rows[0::2]], config_id="replica", created=created
    )
    other_body = s3.get_object(Bucket=destination, Key=other.data_keys[0])["Body"].read()
    pick = random.Random(bench.seed)  # noqa: S311 - a test's choice
    file = InventoryDataFile(
        s3,
        written,
        pick.randrange(len(written.data_keys)),
        vouch=bench.source == "inventory-vouched",
        other=other_body,
    )

    def files() -> bytes:
        keys = [written.manifest_key, *written.data_keys]
        return b"".join(s3.get_object(Bucket=destination, Key=key)["Body"].read() for key in keys)

    bench.tamper(file, files=files)
    executed = apply_through_proxy(
        bench,
        ["--inventory", written.manifest_uri],
        lambda report: plan_written(report, bench.plans),
    )
    report, plan = executed.evidence.report, executed.evidence.plan
    if report is not None and report["status"] == "completed" and plan is not None:
        selected = selected_rows(inventory_rows(s3, written), bucket, bench.filled.cutoff)
        if plan.entries != selected:
            executed.problems.append(
                f"the run's plan is not the rows' selection: {len(plan.entries)} objects, "
                f"{len(selected)} rows ({sorted(set(plan.entries) ^ set(selected))[:5]})"
            )
    return executed


def parts_of(index: Path) -> Plan:
    """The plan an index names: every part's objects, read by the oracle (empty when the index
    cannot be read: the run had no plan)."""
    try:
        read = PlanIndexFile(index)
    except (KeyError, IndexError, ValueError):
        return Plan({}, {}, complete=False)
    parts = [read_plan(read.part_path(number)) for number in range(len(read.lines))]
    entries = {identity: etag for part in parts for identity, etag in part.entries.items()}
    etags = {key: etag for part in parts for key, etag in part.etags.items()}
    lines = sum(part.line_count for part in parts)
    return Plan(read.header, etags, all(part.complete for part in parts), entries, lines)


def cluster(bench: Bench) -> Executed:
    """A plan made on the Dask cluster: an index and its parts. A dry run writes them, then a
    part (vouched for in the index, but for cluster) or the index is edited, before the apply
    (`run --execute --plan INDEX --dask-address`) or while it waits for approval
    (cluster-approved); or an executing run makes them and a part is edited while it waits
    for approval (cluster-live). Under a keep rule (cluster-keep), both runs have it and the
    apply is not given the index's digest. The workers go straight to the S3 server: no proxy
    sees their requests."""
    assert bench.dask_address is not None
    source = bench.source
    on_dask = ["--dask-address", bench.dask_address]
    on_dask += ["--keep-newest", "1"] if source == "cluster-keep" else []
    report_path = bench.workdir / "report.json"
    arguments = [*bench.arguments(), "--execute", *on_dask, "--report-json", str(report_path)]
    if source == "cluster-live":
        index = None
    else:
        index = Path(dry_run(bench, *on_dask)["manifest"])
        arguments += ["--plan", str(index)]
    shown: dict[str, Plan] = {}

    def edit() -> None:
        found = index or next((bench.plans / bench.filled.bucket).glob("*.index.jsonl"))
        shown["plan"] = parts_of(found)  # as the run read it (or made it)
        pick = random.Random(bench.seed)  # noqa: S311 - a test's choice
        file = (
            PlanIndexFile(found)
            if source == "cluster-index"
            else PlanPart(found, pick, vouch=source != "cluster")
        )
        parts = found.parent / found.name.replace(".index.jsonl", ".parts")
        bench.tamper(
            file,
            files=lambda: b"".join(p.read_bytes() for p in [found, *sorted(parts.glob("*"))]),
        )

    problems = []
    if source in ("cluster-approved", "cluster-live"):
        before = bench.snapshot()
        matches = of_bucket(bench.filled.bucket)
        answered = approved(bench, [*arguments, *APPROVAL], bench.env, matches, edit)
        code, stderr = answered.code, answered.stderr
        if not answered.paused:
            problems.append(f"the run never waited for approval (exit {code})")
        plan = shown.get("plan")
    else:
        edit()
        # As tampered: the run reads the index and its parts from their files.
        assert index is not None
        plan = parts_of(index)
        before = bench.snapshot()
        done = command(*arguments, env=bench.env)
        code, stderr = done.returncode, done.stderr
    fresh = source == "cluster-live"
    evidence = bench.evidence(code, stderr, report_at(report_path), plan, before, fresh=fresh)
    return Executed(evidence, problems, round(time.monotonic() - bench.started, 1))


RUNNERS: dict[str, Callable[[Bench], Executed]] = {
    "live": live,
    "saved": saved,
    "saved-digest": saved,
    "saved-approved": saved,
    "saved-keep": saved,
    "inventory": inventory,
    "inventory-vouched": inventory,
    "cluster": cluster,
    "cluster-vouched": cluster,
    "cluster-index": cluster,
    "cluster-approved": cluster,
    "cluster-live": cluster,
    "cluster-keep": cluster,
}
LAYOUTS: dict[str, Layout] = {"saved": BATCHES, "inventory": BATCHES, "inventory-vouched": BATCHES}


# --- a fleet: several targets, one approval -------------------------------------------------


def targets_file(path: Path, benches: Mapping[str, Bench]) -> Path:
    lines = [
        "defaults:",
        f"  older_than_days: {OLDER_THAN_DAYS}",
        "  region: us-east-1",
        "  create_bucket: false",
        "targets:",
    ]
    for name, bench in benches.items():
        lines += [f"  - name: {name}", f"    bucket: {bench.filled.bucket}"]
        lines += [f"    prefix: {PREFIX}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def target_report(outcome: Mapping[str, Any]) -> dict[str, Any]:
    """A fleet target's outcome as a run report (the fleet reports counts, not failure codes)."""
    counts = outcome["counts"]
    failed = counts.get("failed", 0)
    return {
        **counts,
        "status": outcome["status"],
        "message": outcome["message"],
        "manifest": outcome["manifest"],
        "failed_by_code": {"NotReportedByTheFleet": failed} if failed else {},
    }


def fleet(benches: Mapping[str, Bench], workdir: Path) -> dict[str, Executed]:
    """`fleet --execute --require-approval` over one target a case and one untampered: every
    target is planned, then, while the fleet waits for approval, each case's plan is edited;
    approved, each target applies its own plan, bound by its SHA-256."""
    first = next(iter(benches.values()))
    path = targets_file(workdir / "targets.yaml", benches)
    before = {name: bench.snapshot() for name, bench in benches.items()}
    shown: dict[str, Plan] = {}

    def during() -> None:
        for name, bench in benches.items():
            kept = kept_plan(first.plans, bench.filled.bucket)
            copy = workdir / f"{name}.as-planned.jsonl.gz"
            shutil.copyfile(kept, copy)
            shown[name] = read_plan(copy)
            if name != UNTAMPERED:
                bench.tamper(PlanFile(kept), files=kept.read_bytes)

    started = datetime.now().astimezone()
    report_path = workdir / "fleet.json"
    answered = approved(
        replace(first, workdir=workdir),
        [
            *("fleet", "--targets", str(path), "--execute", "--require-approval"),
            *("--report-json", str(report_path)),
        ],
        first.env,
        lambda parameters: parameters.get("targets") == str(path),
        during,
    )
    ended = datetime.now().astimezone()
    problems = [] if answered.paused else [f"the fleet never waited for approval ({answered.code})"]
    if not report_path.exists():
        raise RuntimeError(
            f"the fleet wrote no report ({answered.code}): {answered.stderr[-2000:]}"
        )
    written = json.loads(report_path.read_text())
    outcomes = {outcome["name"]: outcome for outcome in written["targets"]}
    judged: dict[str, RunEvidence] = {}
    for name, bench in benches.items():
        outcome, plan = outcomes[name], shown.get(name)
        # Each target's run planned at its own moment: the cutoff of its live listing.
        cutoff = bench.filled.cutoff
        if plan is not None:
            cutoff = datetime.fromisoformat(plan.header["cutoff"])
            window = timedelta(days=OLDER_THAN_DAYS)
            if not started - window - timedelta(seconds=1) <= cutoff <= ended - window:
                problems.append(f"{name}'s plan has a cutoff of another time: {cutoff}")
        judged[name] = RunEvidence(
            code=outcome["exit_code"],
            report=target_report(outcome),
            plan=plan,
            before=before[name],
            after=bench.snapshot(),
            prefix=PREFIX,
            cutoff=cutoff,
            exchanges=(),
            # Every plan was this fleet's own listing, whatever happened to its file later.
            fresh_plan=True,
            said=outcome["message"],
            stderr=outcome["message"],
        )
    duration = round(time.monotonic() - first.started, 1)
    others = (judged[UNTAMPERED],)
    return {
        name: Executed(judged[name], list(problems), duration, others)
        for name in benches
        if name != UNTAMPERED
    }
