"""Print the effective configuration and where each value came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from coordhub.config import Config, display_value, setting_fields


def describe(config: Config) -> dict[str, Any]:
    """Return the configuration as a JSON-ready mapping."""
    return {
        "profile": config.profile,
        "config_file": config.config_file,
        "settings": {
            spec.name: {
                "value": display_value(config, spec.name),
                "source": config.sources[spec.name],
                "variable": spec.metadata["variable"],
            }
            for spec in setting_fields()
        },
        "problems": [problem.msg for problem in config.problems],
    }


def saveable(config: Config) -> dict[str, Any]:
    """Return the values a JSON configuration file may hold (secrets stay in the environment)."""
    return {
        spec.name: getattr(config, spec.name)
        for spec in setting_fields()
        if not spec.metadata["secret"]
    }


class Command(BaseCommand):
    help = "Print the effective configuration and where each value came from."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print JSON for machines.")
        parser.add_argument(
            "--save",
            metavar="PATH",
            help="Write the effective values (without secrets) as a JSON configuration file.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        config: Config = settings.COORDHUB
        if options["save"]:
            self.save(config, Path(options["save"]))
        if options["json"]:
            self.stdout.write(dump(describe(config)))
        elif not options["save"]:
            self.print_table(config)

    def save(self, config: Config, path: Path) -> None:
        try:
            path.write_text(dump(saveable(config)) + "\n", encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Could not write {str(path)!r}: {exc.strerror}.") from exc
        self.stderr.write(f"Wrote the effective configuration to {path}.")

    def print_table(self, config: Config) -> None:
        self.stdout.write(f"profile: {config.profile}")
        self.stdout.write(f"config file: {config.config_file or '(none)'}")
        rows = [
            (
                spec.metadata["variable"],
                repr(display_value(config, spec.name)),
                config.sources[spec.name],
            )
            for spec in setting_fields()
        ]
        widths = [max(len(row[column]) for row in rows) for column in range(2)]
        for variable, value, source in rows:
            self.stdout.write(f"  {variable:<{widths[0]}}  {value:<{widths[1]}}  {source}")
        for problem in config.problems:
            self.stderr.write(self.style.WARNING(problem.msg))


def dump(data: Any) -> str:
    return json.dumps(data, indent=2)
