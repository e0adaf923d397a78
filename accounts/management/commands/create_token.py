from __future__ import annotations

import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser, no_translations

from accounts.models import User
from accounts.tokens import MAX_EXPIRY_DAYS, token_create


class Command(BaseCommand):
    help = (
        "Create an API token for the user with EMAIL and print it (only the token, on stdout, so "
        "TOKEN=$(manage.py create_token …) works). It is shown this once; only a digest is kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--name", default="cli", help="A name to recognise the token by (default: cli).")
        parser.add_argument(
            "--expires-days",
            type=int,
            default=None,
            metavar="D",
            help=f"Expire after D days (1 to {MAX_EXPIRY_DAYS}; default: never).",
        )

    @no_translations
    def handle(self, *args: Any, email: str, name: str, expires_days: int | None, **options: Any) -> None:
        user = User.objects.filter(email__iexact=email.strip()).first()
        if user is None:
            raise CommandError(f"no user with the email {email}")
        if not user.is_active:
            raise CommandError(f"the user {user.email} is disabled; enable the account first")
        try:
            row, token = token_create(user=user, name=name, expires_in_days=expires_days)
        except ValidationError as exc:
            raise CommandError(" ".join(m for ms in exc.message_dict.values() for m in ms)) from exc
        until = f", expires {row.expires_at:%Y-%m-%d %H:%M %Z}" if row.expires_at else ""
        sys.stderr.write(
            f"Created token {row.name!r} (prefix {row.prefix}) for {user.email}{until}. "
            "It is shown only once:\n"
        )
        self.stdout.write(token)
