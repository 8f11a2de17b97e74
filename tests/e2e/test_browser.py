"""The Prefect UI in a real browser: a custom run, and an approval given in a paused run's form.

Playwright drives Debian's Chromium. Each step leaves a screenshot under test-output/browser/
for whoever debugs a failure.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from deployments.bootstrap import ROOT
from tasks.s3.bucket_lock import LOCK_KEY
from tests.support.stack import DEMO_KEPT, DEMO_OLD, Stack

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
# Debian's Chromium headless as root (see FACTS.md); Playwright cannot download its own here.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ROOT / "test-output" / "browser"
UI_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs it (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Steps:
    """Screenshots numbered in the order the test took them."""

    page: Any
    folder: Path
    count: int = 0
    api_errors: list[str] = field(default_factory=list)

    def shot(self, name: str) -> None:
        self.count += 1
        self.page.screenshot(path=str(self.folder / f"{self.count:02d}-{name}.png"), full_page=True)

    def on_response(self, response: Any) -> None:
        """Keep the API's error answers (the UI only says "Something went wrong")."""
        if "/api/" in response.url and response.status >= 400:
            self.api_errors.append(
                f"{response.status} {response.request.method} {response.url}: {response.text()}"
            )


@pytest.fixture
def steps(browser: Any, request: pytest.FixtureRequest) -> Iterator[Steps]:
    folder = SCREENSHOTS / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    recorder = Steps(page, folder)
    page.on("response", recorder.on_response)
    try:
        yield recorder
    finally:
        recorder.shot("last")  # where the page stood when the test ended, passed or failed
        if recorder.api_errors:
            (folder / "api-errors.log").write_text("\n".join(recorder.api_errors) + "\n")
        context.close()


def form_field(page: Any, name: str, scope: Any = None) -> Any:
    """A form's block for one field (within `scope`, default the page), found by its label."""
    label = page.locator(".schema-form-property__label", has_text=re.compile(rf"^{name}\b"))
    return (scope or page).locator(".schema-form-property").filter(has=label).first


def switch_to(field: Any, on: bool) -> None:
    toggle = field.locator("[role=switch]").first
    if (toggle.get_attribute("aria-checked") == "true") != on:
        toggle.click()
    assert toggle.get_attribute("aria-checked") == ("true" if on else "false")


def wait_for_state_badge(steps: Steps, state: str, timeout_s: float = 180) -> None:
    """Wait until the run page's state badge reads `state` (the page updates itself)."""
    badge = steps.page.locator(".state-badge").first
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if badge.count() and state in badge.inner_text():
            return
        steps.page.wait_for_timeout(1000)
    raise AssertionError(f"the run page never showed {state}")


def submit_until_resumed(stack: Stack, run_id: str, submit: Any, attempts: int = 3) -> None:
    """Submit the resume form; submit again, as a person would, if the server failed to take it
    (a busy SQLite server can answer 500: see api-errors.log) and the run is still paused."""
    for _ in range(attempts):
        submit.click()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if stack.flow_run(run_id)["state"]["type"] != "PAUSED":
                return
            time.sleep(0.5)
        if not submit.is_visible():
            break
    raise AssertionError("the run was not resumed from its form")


def newest_run_for_bucket(
    stack: Stack, deployment_id: str, bucket: str, timeout_s: float = 30
) -> str | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = stack.post(
            "flow_runs/filter",
            {"deployments": {"id": {"any_": [deployment_id]}}, "sort": "EXPECTED_START_TIME_DESC"},
        )
        for run in runs:
            if run["parameters"].get("bucket") == bucket:
                return str(run["id"])
        time.sleep(0.5)
    return None


def submit_until_created(
    stack: Stack, deployment_id: str, bucket: str, submit: Any, attempts: int = 3
) -> str:
    """Submit the custom run form; submit again, as a person would, if the server failed to
    create the run (a busy SQLite server can answer 503: see api-errors.log) and the form is
    still there. Returns the run's id."""
    for _ in range(attempts):
        submit.click()
        run_id = newest_run_for_bucket(stack, deployment_id, bucket, timeout_s=20)
        if run_id is not None:
            return run_id
        if not submit.is_visible():
            break
    raise AssertionError(f"no run of the deployment was created for {bucket}")


class TestRunFromTheUi:
    def test_custom_run_deletes_old_objects_when_dry_run_is_unticked(
        self, stack: Stack, steps: Steps
    ) -> None:
        bucket = stack.seeded_bucket("browser")
        page = steps.page
        deployment = stack.deployment("s3-housekeeping-dev")

        page.goto(f"{stack.ui_url}/deployments")
        page.get_by_role("link", name="s3-housekeeping-dev", exact=True).first.click()
        page.get_by_role("button", name="Run", exact=True).wait_for()
        steps.shot("dev-deployment")
        page.get_by_role("button", name="Run", exact=True).click()
        page.get_by_text("Custom run").click()
        form_field(page, "bucket").locator("textarea").first.wait_for()
        steps.shot("custom-run-form")

        form_field(page, "bucket").locator("textarea").first.fill(bucket)
        form_field(page, "prefix").locator("textarea").first.fill("tmp/")
        form_field(page, "older_than_days").locator("input").first.fill("30")
        switch_to(form_field(page, "dry_run"), on=False)
        steps.shot("form-filled")
        submit = page.get_by_role("button", name="Submit")
        run_id = submit_until_created(stack, deployment["id"], bucket, submit)
        page.goto(f"{stack.ui_url}/runs/flow-run/{run_id}")
        wait_for_state_badge(steps, "Completed")
        steps.shot("run-completed")
        page.get_by_text("Artifacts", exact=True).click()
        page.get_by_text("s3-housekeeping-report").first.wait_for()
        steps.shot("run-artifacts")

        run = stack.flow_run(run_id)
        assert run["parameters"]["dry_run"] is False
        assert run["state"]["type"] == "COMPLETED"
        assert stack.keys(bucket) == DEMO_KEPT


class TestApproveFromTheUi:
    def test_paused_run_deletes_and_records_who_and_why_when_approved_in_its_form(
        self, stack: Stack, steps: Steps
    ) -> None:
        bucket = stack.seeded_bucket("browser-approve")
        run_id = stack.run_deployment(
            "s3-housekeeping-dev",
            bucket=bucket,
            prefix="tmp/",
            older_than_days=30,
            dry_run=False,
            require_approval=True,
        )
        try:
            stack.wait_for_state(run_id, {"PAUSED"})
            page = steps.page
            page.goto(f"{stack.ui_url}/runs/flow-run/{run_id}")
            wait_for_state_badge(steps, "Paused")
            steps.shot("run-paused")

            page.get_by_role("button", name="Resume").click()
            dialog = page.locator(".p-modal__card")
            dialog.get_by_text("Approve this cleanup?").wait_for()
            assert "tmp/build-0001.tar.gz" in dialog.inner_text()
            steps.shot("approval-form")
            assert stack.keys(bucket) == DEMO_OLD | DEMO_KEPT | {LOCK_KEY}  # the run's lock

            switch_to(form_field(page, "Approve", dialog), on=True)
            reason = form_field(page, "Reason", dialog).locator("textarea, input").first
            reason.fill("plan checked in the UI")
            submit = dialog.get_by_role("button", name="Submit")
            submit.click()  # without a name: the form is refused, the run waits on
            dialog.get_by_text("'approver' is a required property").wait_for()
            steps.shot("approval-without-a-name")
            assert stack.flow_run(run_id)["state"]["type"] == "PAUSED"
            assert stack.keys(bucket) == DEMO_OLD | DEMO_KEPT | {LOCK_KEY}

            name = form_field(page, "Approver", dialog).locator("textarea, input").first
            name.fill("Ana Ops (browser)")
            steps.shot("approval-filled")
            submit_until_resumed(stack, run_id, submit)

            wait_for_state_badge(steps, "Completed")
            steps.shot("run-completed")
        finally:
            stack.cancel(run_id)

        assert stack.keys(bucket) == DEMO_KEPT
        (event,) = stack.events(run_id)
        approval = event["payload"]["approval"]
        assert (approval["decision"], approval["by"], approval["reason"]) == (
            "approved",
            "Ana Ops (browser)",
            "plan checked in the UI",
        )
        report = stack.artifacts(run_id)["s3-housekeeping-report"]["data"]
        assert "**Approval**: approved by `Ana Ops (browser)`" in report
        assert "reason: `plan checked in the UI`." in report
