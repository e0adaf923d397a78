from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, no_translations
from django.db.models import QuerySet

from accounts.models import ApiToken, User
from accounts.tokens import TOKEN_RE, token_revoke


class Command(BaseCommand):
    help = (
        "Revoke API tokens: by prefix (the 8 characters after isk_, or the whole token), by name "
        "with --user EMAIL, or every token of a user with --all --user EMAIL."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("token", nargs="?", metavar="PREFIX_OR_NAME")
        parser.add_argument("--user", metavar="EMAIL", help="Whose token NAME is (needed to revoke by name).")
        parser.add_argument(
            "--all", action="store_true", dest="revoke_all", help="Revoke every active token of --user."
        )

    @no_translations
    def handle(
        self, *args: Any, token: str | None, user: str | None, revoke_all: bool, **options: Any
    ) -> None:
        owner = None
        if user is not None:
            owner = User.objects.filter(email__iexact=user.strip()).first()
            if owner is None:
                raise CommandError(f"no user with the email {user}")
        active = ApiToken.objects.filter(revoked_at__isnull=True).select_related("user")
        if revoke_all:
            if owner is None or token is not None:
                raise CommandError("--all needs --user EMAIL and no PREFIX_OR_NAME")
            targets: QuerySet[ApiToken] = active.filter(user=owner)
        elif token is None:
            raise CommandError("say which token: PREFIX_OR_NAME, or --all --user EMAIL")
        else:
            targets = self._find(active, token.strip(), owner)
        count = 0
        for row in targets:
            if token_revoke(token=row):
                count += 1
                self.stdout.write(f"Revoked {row.name!r} (prefix {row.prefix}) of {row.user.email}")
        if count == 0 and not revoke_all:
            raise CommandError(f"no active token matches {token!r}")
        if revoke_all:
            self.stdout.write(f"{count} token(s) revoked")

    def _find(self, active: QuerySet[ApiToken], text: str, owner: User | None) -> QuerySet[ApiToken]:
        full = TOKEN_RE.fullmatch(text)
        prefix = full[1] if full else text.removeprefix("isk_").rstrip("_")
        by_prefix = active.filter(prefix=prefix)
        if owner is not None:
            by_prefix = by_prefix.filter(user=owner)
            by_name = active.filter(user=owner, name=text)
            return by_prefix if by_prefix.exists() else by_name
        if not by_prefix.exists() and active.filter(name=text).exists():
            raise CommandError(f"{text!r} is not a prefix; to revoke by name add --user EMAIL")
        return by_prefix
