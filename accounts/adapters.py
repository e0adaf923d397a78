from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.http import HttpRequest


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Admins add team members; sign-up opens only when OPEN_SIGNUP=true.
        return bool(settings.IMAGESYNC_OPEN_SIGNUP)
