from __future__ import annotations

import os
import secrets
from typing import Any

from django.core.management.base import BaseCommand, no_translations, CommandError
from django.db import transaction

from accounts.models import User


class Command(BaseCommand):
    help = (
        "Make sure an administrator exists. Uses IMAGESYNC_ADMIN_EMAIL / IMAGESYNC_ADMIN_PASSWORD "
        "when set; otherwise creates admin@localhost with a password printed once. Never prompts."
    )

    @no_translations
    def handle(self, *args: Any, **options: Any) -> None:
        email = os.environ.get("IMAGESYNC_ADMIN_EMAIL", "").strip()
        password = os.environ.get("IMAGESYNC_ADMIN_PASSWORD", "")
        if password and not email:
            raise CommandError("IMAGESYNC_ADMIN_PASSWORD is set but IMAGESYNC_ADMIN_EMAIL is not")
        if not email and User.objects.filter(is_superuser=True, is_active=True).exists():
            self.stdout.write("An administrator exists already.")
            return
        email = email or "admin@localhost"
        with transaction.atomic():
            user = User.objects.filter(email__iexact=email).first()
            if user is not None:
                if not (user.is_staff and user.is_superuser):
                    user.is_staff = user.is_superuser = True
                    user.save(update_fields=["is_staff", "is_superuser"])
                    self.stdout.write(f"{email} is now an administrator.")
                else:
                    self.stdout.write(f"Administrator {email} exists already.")
                if password and not user.check_password(password):
                    user.set_password(password)
                    user.save(update_fields=["password"])
                    self.stdout.write(f"Password of {email} set from IMAGESYNC_ADMIN_PASSWORD.")
                return
            shown = not password
            password = password or secrets.token_urlsafe(12)
            User.objects.create_superuser(email=email, password=password)
        self.stdout.write(f"Created administrator {email}.")
        if shown:
            self.stdout.write(
                self.style.WARNING(f"One-time password for {email}: {password}  (change it after signing in)")
            )
