"""Issue an API key for a user and print its secret, which is shown this once only."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from operations import apikeys


class Command(BaseCommand):
    help = (
        "Issue an API key for USERNAME and print its secret alone on stdout "
        "(KEY=$(manage.py coordhub_apikey admin)); it is never shown again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="The user the key acts as.")
        parser.add_argument("--name", default="command line", help="What the key is for.")

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: options["username"]})
        except User.DoesNotExist:
            raise CommandError(f"There is no user {options['username']!r}.") from None
        if not user.is_active:
            raise CommandError(f"The user {options['username']!r} is inactive.")
        key, secret = apikeys.issue(user, options["name"])
        self.stderr.write(f"Issued key {key.prefix}… ({key.name!r}) for {user}.")
        self.stdout.write(secret)
