"""`manage.py loadcheck`: an alias of the `coordhub-loadcheck` console command."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from loadcheck import cli


class Command(BaseCommand):
    help = cli.DESCRIPTION
    requires_system_checks: list[str] = []  # it judges a remote deployment, not this one

    def add_arguments(self, parser: CommandParser) -> None:
        cli.add_arguments(parser)

    def handle(self, **options: Any) -> None:
        try:
            cli.check_deployment(options, self.stdout.write)
        except cli.Stop as exc:
            raise CommandError(str(exc)) from exc
