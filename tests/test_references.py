"""Tests for jobs.references: grammar, normalisation and error messages of image references."""

from __future__ import annotations

import dataclasses
import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from jobs.references import (
    MAX_INPUT_LENGTH,
    NAME_TOTAL_LENGTH_MAX,
    ImageRef,
    InvalidReference,
    parse_reference,
)

SHA256 = "sha256:" + "0123456789abcdef" * 4
SHA384 = "sha384:" + "a1b2c3d4e5f60789" * 6
SHA512 = "sha512:" + "f" * 128
HEX64 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

# input, domain, path, tag, digest
VALID = [
    ("nginx", "docker.io", "library/nginx", "latest", None),
    ("nginx:1.27", "docker.io", "library/nginx", "1.27", None),
    ("library/nginx", "docker.io", "library/nginx", "latest", None),
    ("bitnami/redis:7.2", "docker.io", "bitnami/redis", "7.2", None),
    ("ghcr.io/owner/img:v1", "ghcr.io", "owner/img", "v1", None),
    ("localhost/x", "localhost", "x", "latest", None),
    ("localhost:5000/x:tag", "localhost:5000", "x", "tag", None),
    ("host:5000/x:tag", "host:5000", "x", "tag", None),
    ("[::1]:5000/a/b:c", "[::1]:5000", "a/b", "c", None),
    ("[::1]/a", "[::1]", "a", "latest", None),
    ("[2001:DB8::1]:443/a", "[2001:db8::1]:443", "a", "latest", None),
    ("127.0.0.1:5000/a/b/c:1", "127.0.0.1:5000", "a/b/c", "1", None),
    ("index.docker.io/x/y", "docker.io", "x/y", "latest", None),
    ("index.docker.io/nginx", "docker.io", "library/nginx", "latest", None),
    ("INDEX.Docker.IO/nginx", "docker.io", "library/nginx", "latest", None),
    ("docker.io/nginx", "docker.io", "library/nginx", "latest", None),
    ("Docker.io/nginx", "docker.io", "library/nginx", "latest", None),
    ("docker.io/library/nginx:latest", "docker.io", "library/nginx", "latest", None),
    # Only the exact host docker.io is Docker Hub; with a port it is some other registry.
    ("docker.io:443/nginx", "docker.io:443", "nginx", "latest", None),
    ("Registry.Example.COM:8443/ns1/x", "registry.example.com:8443", "ns1/x", "latest", None),
    (f"nginx@{SHA256}", "docker.io", "library/nginx", None, SHA256),
    (f"nginx:1.27@{SHA256}", "docker.io", "library/nginx", "1.27", SHA256),
    (f"ghcr.io/o/i@{SHA384}", "ghcr.io", "o/i", None, SHA384),
    (f"ghcr.io/o/i:v2@{SHA512}", "ghcr.io", "o/i", "v2", SHA512),
    ("a__b", "docker.io", "library/a__b", "latest", None),
    ("a---b", "docker.io", "library/a---b", "latest", None),
    ("a.b_c-d__e---f", "docker.io", "library/a.b_c-d__e---f", "latest", None),
    ("ns/a.b", "docker.io", "ns/a.b", "latest", None),
    ("0/1:2", "docker.io", "0/1", "2", None),
    ("nginx:" + "t" * 128, "docker.io", "library/nginx", "t" * 128, None),
    ("nginx:_x", "docker.io", "library/nginx", "_x", None),
    ("nginx:V1.2-RC_3", "docker.io", "library/nginx", "V1.2-RC_3", None),
    ("registry.cn-hangzhou.aliyuncs.com/ns/img:1", "registry.cn-hangzhou.aliyuncs.com", "ns/img", "1", None),
    (
        "crpi-abc123.cn-hangzhou.personal.cr.aliyuncs.com/ns/img:1",
        "crpi-abc123.cn-hangzhou.personal.cr.aliyuncs.com",
        "ns/img",
        "1",
        None,
    ),
    # As upstream: without '/' the whole thing is a Docker Hub name, so ':5000' is a tag
    # and a lone host name is an official image name.
    ("host:5000", "docker.io", "library/host", "5000", None),
    ("ghcr.io", "docker.io", "library/ghcr.io", "latest", None),
    # As upstream: only a *bare* 64-hex string is refused.
    (f"{HEX64}:1", "docker.io", f"library/{HEX64}", "1", None),
    # Name limit counts the normalised name: 18 + 237 = 255.
    ("a" * 237, "docker.io", "library/" + "a" * 237, "latest", None),
]


def expected_str(domain: str, path: str, tag: str | None, digest: str | None) -> str:
    text = f"{domain}/{path}"
    if tag is not None:
        text += f":{tag}"
    if digest is not None:
        text += f"@{digest}"
    return text


@pytest.mark.parametrize(("text", "domain", "path", "tag", "digest"), VALID)
def test_valid_reference(
    text: str, domain: str, path: str, tag: str | None, digest: str | None
) -> None:
    ref = parse_reference(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)
    assert str(ref) == expected_str(domain, path, tag, digest)
    assert ref.name == ref.repository == f"{domain}/{path}"
    assert ref.last_component == path.rsplit("/", 1)[-1]
    again = parse_reference(str(ref))
    assert again == ref
    assert str(again) == str(ref)


# input, fragment of the message
INVALID = [
    ("", "empty image reference"),
    ("nginx:1\n", "whitespace or a control character at position 8"),
    ("nginx:1.27\n", "whitespace or a control character at position 11"),
    ("nginx\n:1", "whitespace or a control character at position 6"),
    ("nginx;rm -rf /", "whitespace or a control character at position 9"),
    ("nginx;rm", "repository path component 'nginx;rm' is invalid"),
    ("nginx:$(id)", "tag '$(id)' is invalid"),
    ("nginx:`id`", "tag '`id`' is invalid"),
    ("a b", "whitespace or a control character at position 2"),
    (" nginx", "whitespace or a control character at position 1"),
    ("nginx ", "whitespace or a control character at position 6"),
    ("a\tb", "whitespace or a control character at position 2"),
    ("a\x00b", "whitespace or a control character at position 2"),
    ("a\x7f", "whitespace or a control character at position 2"),
    ("nginx\r", "whitespace or a control character"),
    ("nginx\x85", "whitespace or a control character"),
    ("nginx\u3000", "whitespace or a control character"),
    ("nginx\u200b", "whitespace or a control character"),
    ("nginx\u2028", "whitespace or a control character"),
    ("NGINX", "repository path component 'NGINX' is invalid: path components are lower case"),
    ("docker.io/Nginx", "repository path component 'Nginx' is invalid"),
    ("Foo/bar", "repository names must be lower case"),
    ("LocalHost/x", "repository names must be lower case"),
    ("nginx:", "tag is empty"),
    ("nginx:-x", "tag '-x' is invalid: a tag is 1-128 characters"),
    ("nginx:.x", "cannot start with '.' or '-'"),
    ("nginx:" + "t" * 129, "is invalid: a tag is 1-128 characters"),
    ("nginx:1.2:3", "tag '1.2:3' is invalid"),
    # A ':' before a '/' makes the first component a registry host with a port.
    ("nginx:a/b", "registry port 'a' of 'nginx:a' is invalid"),
    ("nginx@sha256:abc", "expected sha256: followed by 64 lower-case hex digits"),
    ("nginx@" + SHA256.upper().replace("SHA256", "sha256"), "64 lower-case hex digits"),
    ("nginx@" + SHA256 + "0", "64 lower-case hex digits"),
    ("nginx@sha512:" + "a" * 64, "expected sha512: followed by 128 lower-case hex digits"),
    ("nginx@md5:" + "a" * 32, "digest algorithm 'md5' is not supported"),
    ("nginx@SHA256:" + "a" * 64, "digest algorithm 'SHA256' is not supported"),
    ("nginx@", "digest is empty"),
    ("nginx@sha256", "digest 'sha256' is invalid"),
    (f"nginx@{SHA256}@{SHA256}", "digest"),
    (f"nginx@{SHA256}:tag", "lower-case hex digits"),
    (":tag", "repository name is empty"),
    (f"@{SHA256}", "repository name is empty"),
    ("/nginx", "empty path component"),
    ("nginx/", "empty path component"),
    ("a//b", "empty path component"),
    ("ghcr.io/", "empty path component"),
    ("a_-b", "repository path component 'a_-b' is invalid"),
    ("a___b", "repository path component 'a___b' is invalid"),
    ("a._b", "repository path component 'a._b' is invalid"),
    ("-a", "repository path component '-a' is invalid"),
    ("_a", "repository path component '_a' is invalid"),
    ("a.", "repository path component 'a.' is invalid"),
    ("a..b", "repository path component 'a..b' is invalid"),
    ("ns/a-", "repository path component 'a-' is invalid"),
    ("a..b/x", "registry host 'a..b' is invalid"),
    ("-host.io/x", "registry host '-host.io' is invalid"),
    ("host-.io/x", "registry host 'host-.io' is invalid"),
    ("host_1.io/x", "registry host 'host_1.io' is invalid"),
    (".io/x", "registry host '.io' is invalid"),
    (":5000/x", "registry host '' is invalid"),
    ("[::1/x", "registry host '[::1' is invalid"),
    ("[]:5000/x", "registry host '[]' is invalid"),
    ("[::g]/x", "registry host '[::g]' is invalid"),
    ("[::1]x/y", "registry host '[::1]x' is invalid"),
    ("host:port/x", "registry port must be digits"),
    ("host:/x", "registry port must be digits"),
    ("host:50:00/x", "registry port must be digits"),
    ("[::1]:p/x", "registry port must be digits"),
    (HEX64, "cannot specify 64-byte hexadecimal strings"),
    ("ns/" + "a" * 260, f"longer than {NAME_TOTAL_LENGTH_MAX} characters"),
    # 238 characters as written, 256 once normalised to docker.io/library/...
    ("a" * 238, f"longer than {NAME_TOTAL_LENGTH_MAX} characters"),
    ("a" * (MAX_INPUT_LENGTH + 1), f"longer than {MAX_INPUT_LENGTH} characters"),
    ("nginx:\uff11", "non-ASCII character (U+FF11) at position 7"),
    ("ng\u00ednx", "non-ASCII character (U+00ED) at position 3"),
    ("\uff4e\uff47\uff49\uff4e\uff58", "non-ASCII character"),
    ("nginx:1\u0661", "non-ASCII character"),
    ("`", "repository path component '`' is invalid"),
    ("'", "repository path component ''' is invalid"),
    ('"', "repository path component '\"' is invalid"),
    ("\\", "repository path component '\\' is invalid"),
    ("nginx:'1'", "tag ''1'' is invalid"),
    ("nginx:1\\n", "tag '1\\n' is invalid"),
    ("nginx\\x3b", "repository path component 'nginx\\x3b' is invalid"),
    ("nginx:*", "tag '*' is invalid"),
    ("https://ghcr.io/x", "registry port"),
    ("--all", "repository path component '--all' is invalid"),
    ("nginx:--all", "tag '--all' is invalid"),
]


@pytest.mark.parametrize(("text", "fragment"), INVALID)
def test_invalid_reference(text: str, fragment: str) -> None:
    with pytest.raises(InvalidReference) as excinfo:
        parse_reference(text)
    message = str(excinfo.value)
    assert fragment in message
    assert message.isprintable()


def test_invalid_reference_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_reference("NGINX")


@pytest.mark.parametrize("value", [None, b"nginx", 1, ["nginx"]])
def test_non_string_is_refused(value: object) -> None:
    with pytest.raises(InvalidReference, match="must be a string"):
        parse_reference(value)  # type: ignore[arg-type]


def test_long_parts_are_shortened_in_messages() -> None:
    with pytest.raises(InvalidReference) as excinfo:
        parse_reference("nginx:" + "-" * 200)
    assert len(str(excinfo.value)) < 300


def test_tag_and_digest_are_both_kept() -> None:
    ref = parse_reference(f"ghcr.io/o/i:v1@{SHA256}")
    assert ref.tag == "v1"
    assert ref.digest == SHA256
    assert str(ref) == f"ghcr.io/o/i:v1@{SHA256}"


def test_digest_only_gets_no_default_tag() -> None:
    ref = parse_reference(f"nginx@{SHA256}")
    assert ref.tag is None
    assert str(ref) == f"docker.io/library/nginx@{SHA256}"


def test_host_spellings_compare_equal() -> None:
    refs = {
        parse_reference(text)
        for text in ("nginx", "docker.io/nginx", "Docker.IO/library/nginx:latest", "index.docker.io/nginx")
    }
    assert len(refs) == 1


def test_properties() -> None:
    ref = parse_reference("bitnami/redis:7.2")
    assert ref.name == "docker.io/bitnami/redis"
    assert ref.repository == "docker.io/bitnami/redis"
    assert ref.last_component == "redis"
    assert parse_reference("ghcr.io/a/b/c").last_component == "c"


def test_with_tag_replaces_tag_and_drops_digest() -> None:
    ref = parse_reference(f"nginx:1@{SHA256}")
    retagged = ref.with_tag("2")
    assert str(retagged) == "docker.io/library/nginx:2"
    assert retagged.digest is None
    assert str(ref) == f"docker.io/library/nginx:1@{SHA256}"


@pytest.mark.parametrize("tag", ["", "-x", "a b", "a\n", "x" * 129, "1:2"])
def test_with_tag_validates(tag: str) -> None:
    with pytest.raises(InvalidReference, match="tag"):
        parse_reference("nginx").with_tag(tag)


def test_image_ref_is_frozen_and_hashable() -> None:
    ref = parse_reference("nginx")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.tag = "x"  # type: ignore[misc]
    assert hash(ref) == hash(parse_reference("docker.io/library/nginx:latest"))


def test_image_ref_direct_construction_of_normalised_form() -> None:
    ref = ImageRef("ghcr.io", "o/i", tag="v1")
    assert str(ref) == "ghcr.io/o/i:v1"
    assert parse_reference(str(ref)) == ref


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        (("docker.io", "nginx", "latest", None), "library/"),
        (("Docker.io", "library/nginx", "latest", None), "lower case"),
        (("index.docker.io", "x/y", "latest", None), "index.docker.io"),
        (("foo", "bar", "latest", None), "must contain '.'"),
        (("ghcr.io", "o/i", None, None), "a tag or a digest is required"),
        (("ghcr.io", "O/i", "1", None), "invalid repository path"),
        (("ghcr.io", "o/i", "1\n", None), "invalid tag"),
        (("ghcr.io", "o/i", None, "sha256:abc"), "invalid digest"),
        (("ghcr.io/o", "i", "1", None), "invalid registry host"),
        (("ghcr.io", "o/" + "i" * 250, "1", None), "longer than 255"),
        ((None, "o/i", "1", None), "must be a string"),
    ],
)
def test_image_ref_construction_is_checked(
    fields: tuple[object, object, object, object], fragment: str
) -> None:
    with pytest.raises(InvalidReference, match="not a valid normalised image reference") as excinfo:
        ImageRef(*fields)  # type: ignore[arg-type]
    assert fragment in str(excinfo.value)


# --- property-based tests -------------------------------------------------------------

alphanumerics = st.from_regex(r"[a-z0-9]{1,6}", fullmatch=True)
separators = st.sampled_from([".", "_", "__", "-", "--", "---"])


@st.composite
def path_components(draw: st.DrawFn) -> str:
    parts = [draw(alphanumerics)]
    for _ in range(draw(st.integers(0, 3))):
        parts += [draw(separators), draw(alphanumerics)]
    return "".join(parts)


paths = st.lists(path_components(), min_size=1, max_size=4).map("/".join)
domain_labels = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?", fullmatch=True)
ports = st.integers(0, 99999).map(lambda port: f":{port}")
dotted_hosts = st.lists(domain_labels, min_size=2, max_size=4).map(".".join)
ipv6_hosts = st.from_regex(r"\[[a-fA-F0-9]{0,4}:[a-fA-F0-9:]{0,12}\]", fullmatch=True)
# A first component is only a registry if it has '.' or ':' or is localhost.
domains = st.one_of(
    st.sampled_from(
        [
            "localhost",
            "localhost:5000",
            "docker.io",
            "Docker.IO",
            "index.docker.io",
            "INDEX.docker.io",
            "ghcr.io",
            "registry.cn-hangzhou.aliyuncs.com",
        ]
    ),
    dotted_hosts,
    st.tuples(st.one_of(domain_labels, dotted_hosts), ports).map("".join),
    st.tuples(ipv6_hosts, st.one_of(st.just(""), ports)).map("".join),
)
tags = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", fullmatch=True)
digests = st.sampled_from([("sha256", 64), ("sha384", 96), ("sha512", 128)]).flatmap(
    lambda spec: st.text("0123456789abcdef", min_size=spec[1], max_size=spec[1]).map(
        lambda hex_digits: f"{spec[0]}:{hex_digits}"
    )
)


@st.composite
def reference_inputs(draw: st.DrawFn) -> tuple[str, tuple[str, str, str | None, str | None]]:
    """A reference as a user might type it, and its expected normalised fields."""
    domain = draw(st.none() | domains)
    path = draw(paths)
    tag = draw(st.none() | tags)
    digest = draw(st.none() | digests)
    if domain is None and "/" in path:
        # A first component with '.' would be taken as a registry host (as upstream).
        first, rest = path.split("/", 1)
        path = f"{first.replace('.', '-')}/{rest}"

    text = path if domain is None else f"{domain}/{path}"
    if tag is not None:
        text += f":{tag}"
    if digest is not None:
        text += f"@{digest}"

    expected_domain = "docker.io" if domain is None else domain.lower()
    if expected_domain == "index.docker.io":
        expected_domain = "docker.io"
    expected_path = path
    if expected_domain == "docker.io" and "/" not in path:
        expected_path = "library/" + path
    expected_tag = "latest" if tag is None and digest is None else tag
    return text, (expected_domain, expected_path, expected_tag, digest)


@settings(deadline=None)
@given(reference_inputs())
def test_generated_valid_references_parse_and_round_trip(
    case: tuple[str, tuple[str, str, str | None, str | None]],
) -> None:
    text, expected = case
    # Sizes above keep names short, so neither limit can be hit here.
    assume(len(f"{expected[0]}/{expected[1]}") <= NAME_TOTAL_LENGTH_MAX)
    ref = parse_reference(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == expected
    normalised = str(ref)
    assert normalised == expected_str(*expected)
    again = parse_reference(normalised)
    assert again == ref
    assert str(again) == normalised


FORBIDDEN = set(string.whitespace) | set(";$'\"`\\")
# Grammar characters alone, or mixed with the ones an attacker would reach for, so that a
# fair share of the generated strings is accepted and the accept branch is exercised.
GRAMMAR_CHARACTERS = "abc019._-/:@"
NEAR_GRAMMAR = st.one_of(
    st.text(alphabet=GRAMMAR_CHARACTERS, max_size=40),
    st.text(alphabet=GRAMMAR_CHARACTERS + "AB[]" + ";$'\"`\\ \n\t\x00*?&|<>()\u00e9\uff11", max_size=40),
)


def check_accepted_or_refused_cleanly(text: str) -> None:
    try:
        ref = parse_reference(text)
    except InvalidReference as error:
        assert str(error).isprintable()
        return
    normalised = str(ref)
    assert parse_reference(normalised) == ref
    assert str(parse_reference(normalised)) == normalised
    assert normalised.isascii()
    assert normalised.isprintable()
    assert not FORBIDDEN & set(normalised)
    assert not FORBIDDEN & set(text)


@settings(deadline=None)
@given(st.text())
def test_arbitrary_text_is_refused_or_round_trips(text: str) -> None:
    check_accepted_or_refused_cleanly(text)


@settings(deadline=None)
@given(NEAR_GRAMMAR)
def test_near_grammar_text_is_refused_or_round_trips(text: str) -> None:
    check_accepted_or_refused_cleanly(text)


@settings(deadline=None)
@given(
    reference_inputs(),
    st.sampled_from(sorted(FORBIDDEN) + ["\x00", "\x7f", "\u00a0", "\u2028", "\uff11", "\u00e9"]),
    st.integers(min_value=0),
)
def test_inserting_a_forbidden_character_anywhere_is_refused(
    case: tuple[str, tuple[str, str, str | None, str | None]], bad: str, where: int
) -> None:
    text = case[0]
    position = where % (len(text) + 1)
    with pytest.raises(InvalidReference):
        parse_reference(text[:position] + bad + text[position:])
