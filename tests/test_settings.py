"""Configuration comes only from the environment, and a bad value stops start-up by name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from imagesync_site.env import ConfigError, Env, github_repository

ROOT = Path(__file__).resolve().parent.parent


def env(**values: str) -> Env:
    return Env(values)


@pytest.mark.parametrize("value", ["yes", "no", "on", "TRUE1", "2", "y"])
def test_a_boolean_must_be_true_or_false(value):
    with pytest.raises(ConfigError, match=rf"DEBUG='{value}' is not a boolean"):
        env(DEBUG=value).bool("DEBUG", True)


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("False", False), ("1", True), ("0", False), (" ", True)])
def test_a_boolean_reads_true_false_one_zero_and_blank_means_default(value, expected):
    assert env(DEBUG=value).bool("DEBUG", True) is expected


def test_an_integer_is_checked():
    assert env(PORT="25").int("PORT", 1) == 25
    with pytest.raises(ConfigError, match="EMAIL_PORT='abc' is not a whole number"):
        env(EMAIL_PORT="abc").int("EMAIL_PORT", 587)
    with pytest.raises(ConfigError, match="must be at least 1"):
        env(EMAIL_PORT="0").int("EMAIL_PORT", 587, minimum=1)


GOOD_RATES = ["60/minute", "60/min", "60/m", "1/second", "5/s", "100/hour", "1000/day", "1000000/minute"]


@pytest.mark.parametrize("value", GOOD_RATES)
def test_a_rate_is_what_drf_reads(value):
    from rest_framework.throttling import SimpleRateThrottle

    assert env(API_RATE=value).rate("API_RATE", "60/minute") == value
    number, duration = SimpleRateThrottle.parse_rate(None, value)
    assert number >= 1 and duration in (1, 60, 3600, 86400)


BAD_RATES = ["60", "60/", "/minute", "0/minute", "-5/minute", "+5/minute", "6 0/minute", "60/week"]
BAD_RATES += ["60/Minute", "60/minute/2", "60/m1", "sixty/minute", "1.5/second", "60 per minute"]


@pytest.mark.parametrize("value", BAD_RATES)
def test_a_bad_rate_is_refused_by_name(value):
    expected = r"API_RATE=.* is not a rate: use <positive whole number>/<second\|minute\|hour\|day>"
    with pytest.raises(ConfigError, match=expected):
        env(API_RATE=value).rate("API_RATE", "60/minute")


def test_a_blank_rate_means_the_default():
    assert env().rate("API_JOB_CREATE_RATE", "10/minute") == "10/minute"
    assert env(API_JOB_CREATE_RATE=" ").rate("API_JOB_CREATE_RATE", "10/minute") == "10/minute"
    assert env(API_JOB_CREATE_RATE=" 20/hour ").rate("API_JOB_CREATE_RATE", "10/minute") == "20/hour"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("mysql://localhost/db", "scheme must be one of"),
        ("postgres//localhost", "scheme must be one of"),
        ("postgres://host:port/db", "not a valid URL"),
        ("postgres:///", "names no host"),
        ("postgres://h /db", "whitespace"),
    ],
)
def test_a_malformed_url_is_refused_by_name(value, message):
    with pytest.raises(ConfigError, match=message) as info:
        env(DATABASE_URL=value).url("DATABASE_URL", schemes=("postgres", "sqlite"))
    assert "DATABASE_URL=" in str(info.value)


def test_origins_must_be_bare_origins():
    assert env(ALLOWED_ORIGINS="https://a.example, http://b.example:8080/").origins("ALLOWED_ORIGINS") == [
        "https://a.example",
        "http://b.example:8080",
    ]
    with pytest.raises(ConfigError, match="not an origin"):
        env(ALLOWED_ORIGINS="https://a.example/path").origins("ALLOWED_ORIGINS")
    with pytest.raises(ConfigError, match="ALLOWED_ORIGINS"):
        env(ALLOWED_ORIGINS="a.example").origins("ALLOWED_ORIGINS")


def test_a_secret_can_come_from_a_file(tmp_path):
    path = tmp_path / "token"
    path.write_text("s3cret\n")
    assert env(GITHUB_TOKEN_FILE=str(path)).secret("GITHUB_TOKEN") == "s3cret"
    with pytest.raises(ConfigError, match="both set"):
        env(GITHUB_TOKEN="x", GITHUB_TOKEN_FILE=str(path)).secret("GITHUB_TOKEN")
    with pytest.raises(ConfigError, match="GITHUB_TOKEN_FILE=.*cannot read"):
        env(GITHUB_TOKEN_FILE=str(tmp_path / "missing")).secret("GITHUB_TOKEN")


@pytest.mark.parametrize("value", ["owner", "owner/repo/extra", "own er/repo", "https://github.com/o/r"])
def test_github_repository_must_be_owner_slash_repo(value):
    with pytest.raises(ConfigError, match="use owner/repo"):
        github_repository(env(GITHUB_REPOSITORY=value), "GITHUB_REPOSITORY")
    assert github_repository(env(GITHUB_REPOSITORY="ikrong/docker-sync.x"), "GITHUB_REPOSITORY") == "ikrong/docker-sync.x"


def run_manage(*args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}}
    clean.update(environ)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"DEBUG": "yes"}, "DEBUG='yes' is not a boolean"),
        ({"DEBUG": "false"}, "SECRET_KEY is required when DEBUG=false"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL='mysql://x/y'"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL='localhost:6379'"),
        ({"GITHUB_API_URL": "api.github.com"}, "GITHUB_API_URL="),
        ({"GITHUB_REPOSITORY": "nope"}, "GITHUB_REPOSITORY='nope'"),
        ({"EMAIL_USE_TLS": "true", "EMAIL_USE_SSL": "true"}, "EMAIL_USE_TLS and EMAIL_USE_SSL"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL="),
        ({"API_RATE": "60/week"}, "API_RATE='60/week' is not a rate"),
        ({"API_JOB_CREATE_RATE": "0/minute"}, "API_JOB_CREATE_RATE='0/minute' is not a rate"),
    ],
)
def test_start_up_stops_with_a_message_naming_the_variable(tmp_path, variables, message):
    result = run_manage("check", IMAGESYNC_DATA_DIR=str(tmp_path), **variables)
    assert result.returncode == 2, result.stderr
    assert "configuration error" in result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_the_throttle_rates_come_from_the_environment(tmp_path):
    code = "from django.conf import settings; print(settings.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES'])"
    ignored = {"DATABASE_URL", "REDIS_URL", "API_RATE", "API_JOB_CREATE_RATE"}
    clean = {k: v for k, v in os.environ.items() if k not in ignored}
    clean.update(IMAGESYNC_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="imagesync_site.settings")

    def rates(**environ: str) -> str:
        command, full = [sys.executable, "-c", code], {**clean, **environ}
        done = subprocess.run(command, cwd=ROOT, env=full, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert rates() == "{'api': '60/minute', 'job_create': '10/minute'}"
    raised = rates(API_RATE="1000/hour", API_JOB_CREATE_RATE="3/m")
    assert raised == "{'api': '1000/hour', 'job_create': '3/m'}"


def test_production_values_pass_check_deploy(tmp_path):
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        IMAGESYNC_DATA_DIR=str(tmp_path),
        DEBUG="false",
        SECRET_KEY="k" * 20 + "-Zq8!vX2#pL9@rT5$wY7^" + "m" * 20,
        ALLOWED_HOSTS="imagesync.example.com",
        EMAIL_HOST="smtp.example.com",
        DATABASE_URL=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/imagesync"),
        REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_embedded_default_generates_and_keeps_a_secret_key(tmp_path):
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"}}
    clean.update(IMAGESYNC_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="imagesync_site.settings")
    first = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, check=True)
    second = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, check=True)
    assert len(first.stdout.strip()) >= 50
    assert first.stdout == second.stdout
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_env_example_documents_every_variable_the_settings_read():
    import re

    settings_text = (ROOT / "imagesync_site" / "settings.py").read_text()
    read = set(re.findall(r'env\.\w+\(\s*"([A-Z0-9_]+)"', settings_text))
    read |= set(re.findall(r'github_repository\(env, "([A-Z0-9_]+)"\)', settings_text))
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read, "the pattern found no variables: the test would pass vacuously"
    assert read - documented == set()
