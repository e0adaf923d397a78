"""The portal in a real browser: Debian's Chromium, headless, driven by Playwright.

Never `playwright install`: the browser is the system's /usr/bin/chromium (scripts/ensure-packages
installs it). One test runs the whole stack (Celery worker, GitHub emulator executing copy.yml,
registries) and watches the job page reach "succeeded" without a reload; the others stand in for
the worker themselves, moving jobs through their statuses from the test thread, which is quicker
and lets them pace the page.

Set IMAGESYNC_SCREENSHOTS=docs/screenshots to refresh the README's screenshots.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from jobs.models import SyncJob
from jobs.services import job_transition
from tests.conftest import PASSWORD
from tests.factories import JobFactory
from tests.live_stack import live_stack, live_stack_factory  # noqa: F401 (fixtures)
from tests.portal_fixtures import fresh_limits  # noqa: F401 (autouse)
from tests.registries import (  # noqa: F401 (fixtures)
    build_image,
    destination_registry,
    manifest_digest,
    push_image,
    registry_root,
    source_registry,
    unique_repo,
)

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
HOST = "registry.cn-hangzhou.aliyuncs.com"
SHOTS = os.environ.get("IMAGESYNC_SCREENSHOTS", "")

playwright_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: scripts/ensure-packages installs it", pytrace=False)
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)

expect = playwright_api.expect


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    # Playwright's sync API keeps an event loop running in this thread, which Django takes
    # for async context: the ORM calls made by the test itself are safe (one thread).
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
            ],
        )
        yield browser
        browser.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def no_broker(monkeypatch):
    # No worker runs for these tests: the test itself plays the worker's part.
    from jobs import tasks

    for name in ("dispatch_job", "resolve_dispatch", "collect_run_report", "cancel_run"):
        monkeypatch.setattr(getattr(tasks, name), "apply_async", lambda *args, **kwargs: None)


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(
        base_url=live_server.url,
        locale="en-US",
        viewport={"width": 1280, "height": 860},
        permissions=["clipboard-read", "clipboard-write"],
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []
    # A CSP violation or a script error shows up as a console error.
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.problems = problems  # type: ignore[attr-defined]
    yield page
    context.close()
    assert not problems, problems


def shot(page, name: str, full_page: bool = True) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=full_page)


def sign_in(page, email: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    shot(page, "login")
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_role("heading", name="My jobs")).to_be_visible()


# What the worker and GitHub's webhook would record for each move.
MOVES = {
    "dispatching": ("worker", "dispatching copy.yml (attempt 1)"),
    "queued": ("worker", "dispatched"),
    "running": ("webhook", "run in_progress"),
    "succeeded": ("webhook", "run completed/success"),
}


def advance(job: SyncJob, *statuses: str, pause: float = 0.8, **fields: object) -> None:
    for status in statuses:
        time.sleep(pause)
        actor, reason = MOVES[status]
        extra = fields if status == "queued" else {}
        assert job_transition(job=job, to=status, actor=actor, reason=reason, **extra)


def history(alice, team_namespace) -> None:
    """A few finished jobs, so that the list and screenshots look like a team's."""
    now = timezone.now()
    run = "https://github.com/acme/imagesync/actions/runs/"
    synced = JobFactory(
        owner=alice, namespace=team_namespace, kind="sync", source="docker.io/bitnami/redis",
        destination=f"{HOST}/team/redis", destination_repository=f"{HOST}/team/redis", status="succeeded",
        github_run_id=880010, github_run_number=40, github_run_url=f"{run}880010",
        result={"copied": [{"tag": "7.4", "digest": "sha256:" + "1" * 64}],
                "skipped": [{"tag": "7.2", "digest": "sha256:" + "2" * 64}],
                "failed": [{"tag": "6.0", "reason": "manifest unknown"}]},
    )
    failed = JobFactory(
        owner=alice, namespace=team_namespace, source="ghcr.io/owner/app:v1",
        destination=f"{HOST}/team/app:v1", destination_repository=f"{HOST}/team/app", status="failed",
        github_run_id=880011, github_run_number=41, github_run_url=f"{run}880011",
        error_message="unauthorized: authentication required", failed_step="copy › Copy image",
        log_excerpt="Copying image ghcr.io/owner/app:v1\nFATA[0003] unauthorized: authentication required",
    )
    for job, minutes, took in ((synced, 50, 312), (failed, 20, 41)):
        started = now - timedelta(minutes=minutes)
        SyncJob.objects.filter(pk=job.pk).update(created_at=started, finished_at=started + timedelta(seconds=took))


@pytest.mark.usefixtures("no_broker")
@pytest.mark.django_db(transaction=True)
def test_sign_in_submit_a_copy_watch_it_succeed_and_copy_the_pull_line(page, alice, team_namespace):
    history(alice, team_namespace)
    sign_in(page, alice.email)

    page.get_by_role("link", name="New job").first.click()
    page.get_by_label("Source image").fill("nginx:1.27")
    destination = page.get_by_label("Destination")
    expect(destination).to_have_value("team/nginx:1.27")  # derived as the user types
    shot(page, "form")
    page.get_by_role("button", name="Submit", exact=True).click()

    expect(page.get_by_role("heading", name="Job #")).to_contain_text("Pending")
    job = SyncJob.objects.get(source="docker.io/library/nginx:1.27")
    page.evaluate("window.__marker = 1")

    advance(job, "dispatching", "queued", "running", github_run_id=880001, github_run_number=42,
            github_run_url="https://github.com/acme/imagesync/actions/runs/880001")
    expect(page.locator("#job-live [data-role=badge]").first).to_have_text("Running")
    advance(job, "succeeded")
    expect(page.locator("#job-live [data-role=badge]").first).to_have_text("Succeeded")
    assert page.evaluate("window.__marker") == 1, "the page was reloaded"
    expect(page.get_by_role("link", name="#42")).to_be_visible()  # the live part was redrawn

    copy = page.get_by_role("button", name="Copy docker pull line")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == f"docker pull {HOST}/team/nginx:1.27"
    shot(page, "job")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()
    expect(page.locator("tbody tr")).to_have_count(3)
    shot(page, "list")


@pytest.mark.usefixtures("no_broker")
@pytest.mark.django_db(transaction=True)
def test_list_rows_update_in_place_and_polling_stops_when_nothing_is_active(page, alice, team_namespace):
    job = JobFactory(owner=alice, namespace=team_namespace, status="queued")
    sign_in(page, alice.email)
    polls: list[str] = []
    page.on("request", lambda request: "/jobs/status/" in request.url and polls.append(request.url))
    page.evaluate("window.__marker = 1")
    row = page.locator(f"tr[data-job-id='{job.pk}']")
    expect(row.locator("[data-role=badge]")).to_have_text("Queued")

    advance(job, "running", "succeeded", pause=0.5)
    expect(row.locator("[data-role=badge]")).to_have_text("Succeeded")
    expect(row).to_have_attribute("data-active", "0")
    assert page.evaluate("window.__marker") == 1
    assert polls and f"ids={job.pk}" in polls[0]
    seen = len(polls)
    page.wait_for_timeout(4_000)  # more than one polling interval
    assert len(polls) == seen, "still polling with nothing active"


@pytest.mark.usefixtures("no_broker")
@pytest.mark.django_db(transaction=True)
def test_switch_language_and_it_is_remembered(page, alice, team_namespace):
    sign_in(page, alice.email)
    page.get_by_role("button", name="简体中文").click()
    expect(page.get_by_role("heading", name="我的任务")).to_be_visible()
    page.get_by_role("link", name="新建任务").first.click()
    expect(page.get_by_role("heading", name="新建任务")).to_be_visible()
    page.get_by_label("源镜像").fill("bitnami/redis:7.4")
    expect(page.get_by_label("目标", exact=True)).to_have_value("team/redis:7.4")
    shot(page, "form-zh")
    assert page.locator("html").get_attribute("lang") == "zh-hans"


@pytest.mark.usefixtures("no_broker")
@pytest.mark.django_db(transaction=True)
def test_the_form_adapts_to_a_sync(page, alice, team_namespace):
    sign_in(page, alice.email)
    page.goto("/jobs/new/")
    filters = page.get_by_role("group", name="Tag filters (sync only)")
    expect(filters).to_be_hidden()
    page.get_by_label("Source image").fill("bitnami/redis:7.4")
    page.get_by_label("Destination").fill("team/cache:7.4")  # the user's own name is kept…
    page.get_by_label("Source image").fill("bitnami/redis:7.2")
    expect(page.get_by_label("Destination")).to_have_value("team/cache:7.4")
    page.get_by_label("Sync all tags").check()  # …but a sync always goes to namespace/name
    expect(page.get_by_label("Destination")).to_have_value("team/redis")
    expect(page.get_by_label("Destination")).to_have_attribute("readonly", "")
    expect(filters).to_be_visible()
    page.get_by_label("Only tags matching").fill(r"^7\.")
    page.get_by_role("button", name="Submit", exact=True).click()
    expect(page.get_by_role("heading", name="Job #")).to_be_visible()
    job = SyncJob.objects.get()
    assert (job.kind, job.destination, job.tag_include) == ("sync", f"{HOST}/team/redis", r"^7\.")


@pytest.mark.usefixtures("no_broker")
@pytest.mark.django_db(transaction=True)
def test_a_bad_reference_is_refused_and_nothing_submitted(page, alice, team_namespace):
    sign_in(page, alice.email)
    page.goto("/jobs/new/")
    page.get_by_label("Source image").fill("nginx:-1.27")
    page.get_by_role("button", name="Submit", exact=True).click()
    error = page.locator("#id_source_error")
    expect(error).to_contain_text("Tag '-1.27' is invalid")
    expect(page.get_by_label("Source image")).to_have_attribute("aria-invalid", "true")
    assert not SyncJob.objects.exists()


@pytest.mark.usefixtures("no_broker")
@pytest.mark.django_db(transaction=True)
def test_pages_fit_a_phone_screen(page, alice, team_namespace):
    history(alice, team_namespace)
    job = SyncJob.objects.filter(kind="sync").get()
    sign_in(page, alice.email)
    page.set_viewport_size({"width": 375, "height": 740})
    for url in ["/", "/jobs/new/", "/jobs/batch/", f"/jobs/{job.pk}/", "/accounts/profile/"]:
        page.goto(url)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{url} scrolls sideways by {overflow}px on a phone"
    page.goto(f"/jobs/{job.pk}/")
    shot(page, "job-phone")


def test_a_copy_through_the_whole_stack_turns_succeeded_on_the_page(page, live_stack):  # noqa: F811
    """Portal → Celery worker → GitHub emulator running copy.yml → skopeo → registry, watched
    from the browser: the page follows the job to ``succeeded`` without a reload."""
    stack = live_stack
    repo = unique_repo("web")
    digest = push_image(stack.source, repo, "1.0", build_image(repo))
    name = repo.rsplit("/", 1)[-1]
    sign_in(page, stack.owner.email)
    page.goto("/jobs/new/")
    page.get_by_label("Source image").fill(f"{stack.source.host}/{repo}:1.0")
    expect(page.get_by_label("Destination")).to_have_value(f"team/{name}:1.0")
    page.get_by_role("button", name="Submit", exact=True).click()
    expect(page.get_by_role("heading", name="Job #")).to_be_visible()
    page.evaluate("window.__marker = 1")

    badge = page.locator("#job-live [data-role=badge]").first
    expect(badge).to_have_text("Succeeded", timeout=120_000)
    assert page.evaluate("window.__marker") == 1, "the page was reloaded"
    job = SyncJob.objects.get()
    expect(page.get_by_role("link", name=f"#{job.github_run_number}")).to_be_visible()
    pull = f"docker pull {stack.destination.host}/team/{name}:1.0"
    expect(page.locator("#copy-pull")).to_have_text(pull)
    assert manifest_digest(stack.destination, f"team/{name}", "1.0") == digest  # it really arrived


def test_the_browser_is_debians_not_a_download():
    assert shutil.which("chromium") == CHROMIUM or Path(CHROMIUM).exists()
