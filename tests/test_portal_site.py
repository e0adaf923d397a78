"""What every page shares: security headers, a CSP without inline code, and two languages."""

from __future__ import annotations

import ast
import gettext
import re
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import translation

from jobs.localise import localise
from jobs.references import InvalidReference, parse_reference
from tests.factories import JobFactory
from tests.portal_fixtures import fresh_limits  # noqa: F401 (autouse)

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")


@pytest.fixture
def pages(client, alice, team_namespace):
    job = JobFactory(owner=alice, namespace=team_namespace, status="failed", log_excerpt="boom")
    client.force_login(alice)
    return [
        reverse("home"),
        reverse("jobs:new"),
        reverse("jobs:batch"),
        reverse("jobs:detail", args=[job.pk]),
        reverse("profile"),
        reverse("account_change_password"),
        reverse("mfa_index"),
    ]


@pytest.mark.django_db
def test_every_page_sends_the_security_headers(client, pages):
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"
        csp = response["Content-Security-Policy"]
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "frame-ancestors 'none'" in csp


@pytest.mark.django_db
def test_no_page_carries_inline_script_or_handlers(client, pages):
    for url in pages:
        response = client.get(url)
        body = response.content.decode()
        nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)
        for tag in re.findall(r"<script\b[^>]*>", body):
            assert 'src="/static/' in tag or 'type="application/json"' in tag, (url, tag)
            if "imagesync.js" in tag:
                assert f'nonce="{nonce}"' in tag
        assert not re.search(r"\son[a-z]+\s*=", body), url
        assert "style=" not in body, url


@pytest.mark.django_db
def test_the_sign_in_page_is_clean_too(client):
    response = client.get(reverse("account_login"))
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", response.content.decode())
    assert response["X-Frame-Options"] == "DENY"


@pytest.mark.django_db
def test_every_form_carries_a_csrf_token(client, pages):
    for url in pages:
        body = client.get(url).content.decode()
        for form in re.findall(r"<form\b[^>]*>.*?</form>", body, flags=re.DOTALL):
            if 'method="post"' in form:
                assert "csrfmiddlewaretoken" in form, (url, form[:200])


@pytest.mark.django_db
def test_the_language_follows_the_browser(client, alice):
    client.force_login(alice)
    zh = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9").content.decode()
    en = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    assert '<html lang="zh-hans">' in zh and "新建任务" in zh
    assert '<html lang="en">' in en and "New job" in en


@pytest.mark.django_db
def test_the_language_can_be_switched_and_is_remembered(client, alice):
    client.force_login(alice)
    response = client.post(reverse("set_language"), {"language": "en", "next": reverse("home")},
                           HTTP_ACCEPT_LANGUAGE="zh-CN")
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert response.cookies["django_language"].value == "en"
    again = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    assert '<html lang="en">' in again


def _po_entries(text: str) -> list[dict[str, object]]:
    """The entries of a .po file: msgid, msgid_plural, msgstr (or msgstr[n]) and flags."""
    entries: list[dict[str, object]] = []
    entry: dict[str, object] = {}
    key = ""
    for line in text.splitlines() + [""]:
        if not line.strip():
            if entry:
                entries.append(entry)
            entry, key = {}, ""
        elif line.startswith("#,"):
            entry["flags"] = line[2:]
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            entry[key] = str(entry[key]) + ast.literal_eval(line)
        else:
            key, _space, value = line.partition(" ")
            entry[key] = ast.literal_eval(value)
    return entries


def test_the_compiled_catalogue_is_committed_complete_and_current():
    assert PO.exists() and MO.exists()
    entries = [e for e in _po_entries(PO.read_text(encoding="utf-8")) if e.get("msgid")]
    assert len(entries) > 100
    fuzzy = [e["msgid"] for e in entries if "fuzzy" in str(e.get("flags", ""))]
    assert not fuzzy, f"fuzzy entries are not used by gettext: review them: {fuzzy[:5]}"
    with MO.open("rb") as fh:
        catalogue = gettext.GNUTranslations(fh)._catalog  # type: ignore[attr-defined]
    for entry in entries:
        if "msgid_plural" in entry:
            forms = {k: v for k, v in entry.items() if k.startswith("msgstr[")}
            assert all(forms.values()), f"untranslated: {entry['msgid']!r}"
            assert catalogue.get((entry["msgid"], 0)) == forms["msgstr[0]"], f"{entry['msgid']!r}: run compilemessages"
        else:
            assert entry.get("msgstr"), f"untranslated: {entry['msgid']!r}"
            assert catalogue.get(entry["msgid"]) == entry["msgstr"], f"{entry['msgid']!r}: run compilemessages"


@pytest.mark.parametrize(
    "text",
    [
        "", "nginx:1 ", "ｎginx", "a" * 64, "Foo/bar", "bad host!/x", "host:port/x", "x//y", "UPPER",
        "nginx:", "nginx:-x", "nginx@", "nginx@md5:abc", "nginx@sha256:abc", "x" * 1100,
        "registry.example.com/" + "a" * 250,
    ],
)
def test_every_reference_error_has_a_chinese_wording(text):
    with pytest.raises(InvalidReference) as info:
        parse_reference(text)
    english = str(info.value)
    with translation.override("zh-hans"):
        chinese = localise(english)
    assert chinese != english
    assert not re.search(r"\b(is|are|the|must)\b", chinese), chinese
    with translation.override("en"):
        assert localise(english)  # English gets a tidied sentence, never nothing


def test_an_unknown_message_is_passed_through():
    assert localise("something new went wrong") == "something new went wrong"
