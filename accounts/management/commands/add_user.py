from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, no_translations, CommandError, CommandParser
from django.core.validators import validate_email
from django.db import transaction

from accounts.models import User


class Command(BaseCommand):
    help = "Add a user who signs in with EMAIL. Without --password a random one is printed once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--password", help="Initial password (default: generate one and print it).")
        parser.add_argument("--staff", action="store_true", help="Make the user an administrator.")

    @no_translations
    def handle(self, *args: Any, email: str, password: str | None, staff: bool, **options: Any) -> None:
        email = User.objects.normalize_email(email.strip())
        try:
            validate_email(email)
        except ValidationError as exc:
            raise CommandError(f"{email!r} is not a valid email address") from exc
        if User.objects.filter(email__iexact=email).exists():
            raise CommandError(f"a user with the email {email} already exists")
        generated = password is None
        if generated:
            password = secrets.token_urlsafe(12)
        user = User(email=email, is_staff=staff, is_superuser=staff)
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise CommandError("the password is too weak: " + " ".join(exc.messages)) from exc
        with transaction.atomic():
            user.set_password(password)
            user.save()
        role = "administrator" if staff else "user"
        self.stdout.write(f"Created {role} {email}")
        if generated:
            self.stdout.write(f"Password (shown once): {password}")
