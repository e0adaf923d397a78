from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError

from jobs import registries
from jobs.models import TargetNamespace
from tests.factories import NamespaceFactory


@pytest.mark.parametrize(
    ("host", "kind", "label"),
    [
        ("registry.cn-hangzhou.aliyuncs.com", "acr-personal", "personal edition (cn-hangzhou)"),
        ("registry-vpc.cn-beijing.aliyuncs.com", "acr-personal", "VPC network only"),
        ("registry-internal.cn-shanghai.aliyuncs.com", "acr-personal", "(cn-shanghai), VPC"),
        ("crpi-abc123xyz.cn-hangzhou.personal.cr.aliyuncs.com", "acr-personal-instance", "instance (cn-hangzhou)"),
        ("crpi-abc123xyz-vpc.cn-hangzhou.personal.cr.aliyuncs.com", "acr-personal-instance", "VPC network only"),
        ("myco-registry.cn-shenzhen.cr.aliyuncs.com", "acr-enterprise", "enterprise edition (cn-shenzhen)"),
        ("myco-registry-vpc.ap-southeast-1.cr.aliyuncs.com", "acr-enterprise", "(ap-southeast-1), VPC"),
        ("harbor.example.com:8443", "other", "Other registry"),
        ("registry.cn-hangzhou.aliyuncs.com.evil.example", "other", "Other registry"),
        ("127.0.0.1:5000", "other", "Other registry"),
    ],
)
def test_it_recognises_aliyun_hosts(host, kind, label):
    info = registries.RegistryInfo(host)
    assert info.kind == kind
    assert label in info.label


@pytest.mark.parametrize("host", ["registry.cn-hangzhou.aliyuncs.com", "localhost:5000", "[::1]:5000", "10.0.0.1", "a-b.c"])
def test_valid_hosts(host):
    assert registries.host_error(host) is None


@pytest.mark.parametrize(
    "host", ["", "https://x.com", "x.com/ns", "-x.com", "x..com", "x.com:99999", "x.com:", "x .com", "x.com\n", "Ｘ.com"]
)
def test_invalid_hosts(host):
    assert registries.host_error(host)


@pytest.mark.parametrize("name", ["ab", "team-a", "team_a", "a1", "a" * 30, "a--b", "a__b"])
def test_valid_namespace_names(name):
    assert registries.namespace_error(name) is None


@pytest.mark.parametrize("name", ["a", "a" * 31, "Team", "-ab", "ab-", "_ab", "a_-b", "a.b", "a b", "ab\n", "团队"])
def test_invalid_namespace_names(name):
    assert registries.namespace_error(name)


@pytest.mark.parametrize(("name", "ok"), [("DESTINATION_CREDENTIAL", True), ("acr_team", True), ("_X", True), ("1X", False), ("GITHUB_X", False), ("github_x", False), ("A-B", False), ("", False), ("A" * 101, False)])
def test_secret_names_follow_github(name, ok):
    assert (registries.secret_name_error(name) is None) is ok


@pytest.mark.django_db
def test_full_clean_normalises_before_validating():
    ns = TargetNamespace(registry=" Registry.CN-Beijing.aliyuncs.com ", namespace="team", credential_secret="acr_x")
    ns.full_clean()
    assert (ns.registry, ns.credential_secret) == ("registry.cn-beijing.aliyuncs.com", "ACR_X")


@pytest.mark.django_db
def test_registry_and_namespace_are_unique_together():
    NamespaceFactory(registry="registry.cn-beijing.aliyuncs.com", namespace="team")
    with pytest.raises(ValidationError, match="already exists"):
        TargetNamespace(registry="registry.cn-beijing.aliyuncs.com", namespace="team").full_clean()


@pytest.mark.django_db
def test_pushable_by_members_and_groups_only(alice, bob, charlie, team_namespace):
    group = Group.objects.create(name="platform")
    charlie.groups.add(group)
    by_group = NamespaceFactory(namespace="platform")
    by_group.member_groups.add(group)
    NamespaceFactory(namespace="inactive", members=[alice], is_active=False)
    assert list(TargetNamespace.objects.pushable_by(alice)) == [team_namespace]
    assert list(TargetNamespace.objects.pushable_by(bob)) == [team_namespace]
    assert list(TargetNamespace.objects.pushable_by(charlie)) == [by_group]
    by_group.members.add(charlie)
    assert list(TargetNamespace.objects.pushable_by(charlie)) == [by_group]  # no duplicates
    charlie.is_active = False
    assert not TargetNamespace.objects.pushable_by(charlie).exists()
