"""Validate a running coordhub deployment over HTTP and write the results."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError, CommandParser

from operations import loadcheck


class Command(BaseCommand):
    help = (
        "Check a running coordhub at URL: configuration, response times, concurrency and "
        "rate limits, polling backoff. Starts (and cancels) simulated operations, spending "
        "this client's start budget."
    )
    requires_system_checks: list[str] = []  # it judges a remote deployment, not this one

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("url", help="The deployment's base URL, e.g. http://127.0.0.1:8000.")
        parser.add_argument("--api-key", help="Send 'Authorization: Bearer KEY'.")
        parser.add_argument(
            "--out",
            type=Path,
            default=Path("test_results"),
            help="Folder for performance_test_results.json and performance_test_summary.md.",
        )
        parser.add_argument("--expect-rpm", type=int, help="The starts per minute to expect.")
        parser.add_argument("--expect-slots", type=int, help="The slot count to expect.")
        parser.add_argument(
            "--requests", type=int, default=50, help="GETs of /api/health to time (default 50)."
        )
        parser.add_argument(
            "--max-average",
            type=float,
            default=2.0,
            help="Slowest acceptable average response time in seconds (default 2.0).",
        )
        parser.add_argument(
            "--yes", action="store_true", help="Spend the start budget without asking."
        )

    def handle(self, url: str, **options: Any) -> None:
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise CommandError(f"{url!r} is not an http:// or https:// URL.")
        for name in ("expect_rpm", "expect_slots", "requests"):
            if options[name] is not None and options[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be at least 1.")
        self.assume_yes = options["yes"]
        self.stdout.write(f"coordhub loadcheck of {url}")
        try:
            with loadcheck.connect(url, options["api_key"]) as client:
                report = loadcheck.run(
                    client,
                    requests=options["requests"],
                    max_average=options["max_average"],
                    expect_rpm=options["expect_rpm"],
                    expect_slots=options["expect_slots"],
                    confirm=self.confirm,
                    echo=self.stdout.write,
                )
        except loadcheck.Unreachable as exc:
            raise CommandError(str(exc)) from exc
        except loadcheck.Declined as exc:
            raise CommandError("Stopped before starting any operation; nothing written.") from exc
        results, summary = loadcheck.write_report(report, options["out"])
        self.stdout.write(f"Wrote {results} and {summary}.")
        if report.failed:
            names = ", ".join(check.name for check in report.failed)
            raise CommandError(
                f"{len(report.failed)} of {len(report.checks)} checks failed: {names}."
            )
        self.stdout.write(self.style.SUCCESS(f"All {len(report.checks)} checks passed."))

    def confirm(self, plan: str) -> bool:
        """Show what the starting checks will spend; ask unless --yes or stdin is no terminal."""
        self.stdout.write(plan)
        if self.assume_yes:
            return True
        if not sys.stdin.isatty():
            self.stdout.write("stdin is not a terminal, so going ahead without asking.")
            return True
        try:
            return input("Go ahead? [y/N] ").strip().lower() in ("y", "yes")
        except (EOFError, KeyboardInterrupt):
            return False
