from __future__ import annotations

import factory

from accounts.models import User
from jobs.models import SyncJob, TargetNamespace


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery staple")

    @factory.post_generation
    def save_password(self, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            self.save()


class NamespaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TargetNamespace
        skip_postgeneration_save = True

    registry = "registry.cn-hangzhou.aliyuncs.com"
    namespace = factory.Sequence(lambda n: f"team{n}")

    @factory.post_generation
    def members(self, create: bool, extracted: list[User] | None, **kwargs: object) -> None:
        if create and extracted:
            self.members.set(extracted)


def _without_tag(reference: str) -> str:
    head, _sep, last = reference.partition("@")[0].rpartition("/")
    return f"{head}/{last.partition(':')[0]}" if head else last.partition(":")[0]


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SyncJob

    owner = factory.SubFactory(UserFactory)
    namespace = factory.SubFactory(NamespaceFactory)
    kind = SyncJob.Kind.COPY
    source = "docker.io/library/nginx:1.27"
    destination = factory.LazyAttribute(lambda job: f"{job.namespace.registry}/{job.namespace.namespace}/nginx:1.27")
    # What job_create stores: the destination without its tag (a sync's destination has none).
    destination_repository = factory.LazyAttribute(lambda job: _without_tag(job.destination))
