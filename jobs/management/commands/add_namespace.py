from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, no_translations, CommandError, CommandParser
from django.db import transaction

from accounts.models import User
from jobs.models import DEFAULT_CREDENTIAL_SECRET, DEFAULT_REPOSITORY_QUOTA, TargetNamespace


class Command(BaseCommand):
    help = "Add a target namespace in a registry, with the users who may push to it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("registry", help="Registry host, e.g. registry.cn-hangzhou.aliyuncs.com")
        parser.add_argument("namespace", help="Namespace in that registry")
        parser.add_argument("--member", action="append", default=[], metavar="EMAIL", help="May push here; repeat.")
        parser.add_argument(
            "--secret",
            default=DEFAULT_CREDENTIAL_SECRET,
            help=f"GitHub secret holding username:password (default {DEFAULT_CREDENTIAL_SECRET})",
        )
        parser.add_argument("--quota", type=int, default=DEFAULT_REPOSITORY_QUOTA, help="Repository quota")
        parser.add_argument("--description", default="")

    @no_translations
    def handle(self, *args: Any, **opts: Any) -> None:
        members, missing = [], []
        for email in (e.strip() for e in opts["member"]):
            user = User.objects.filter(email__iexact=email).first()
            if user is None:
                missing.append(email)
            else:
                members.append(user)
        if missing:
            raise CommandError(f"no user with the email {', '.join(missing)}: add them first with add_user")
        if opts["quota"] < 1:
            raise CommandError("--quota must be at least 1")
        namespace = TargetNamespace(
            registry=opts["registry"],
            namespace=opts["namespace"],
            credential_secret=opts["secret"],
            repository_quota=opts["quota"],
            description=opts["description"],
        )
        try:
            namespace.full_clean()
        except ValidationError as exc:
            lines = [
                " ".join(msgs) if field == "__all__" else f"{field}: {' '.join(msgs)}"
                for field, msgs in exc.message_dict.items()
            ]
            raise CommandError("; ".join(lines)) from exc
        with transaction.atomic():
            namespace.save()
            namespace.members.set(members)
        self.stdout.write(f"Created namespace {namespace} ({namespace.registry_label})")
        if members:
            self.stdout.write("Members: " + ", ".join(sorted(m.email for m in members)))
