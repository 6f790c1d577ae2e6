"""`coordhub-loadcheck URL`: check a running coordhub and write the results.

`main` is the console entry point; `manage.py loadcheck` adds the same arguments
(`add_arguments`) and calls `check_deployment`, turning `Stop` into its CommandError.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loadcheck.client import Unreachable, connect
from loadcheck.polling import POLL_WINDOW_SECONDS
from loadcheck.report import write_report
from loadcheck.runner import Declined, run

PROG = "coordhub-loadcheck"
DESCRIPTION = (
    "Check a running coordhub at URL: configuration, response times, concurrency and "
    "rate limits, polling (the reported backoff ladder, and the dashboard fragment's "
    "conditional answers measured). Starts (and cancels) simulated operations, spending "
    "this client's start budget."
)


class Stop(Exception):
    """The check could not run, or ran and found failures; the message says which."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add loadcheck's arguments to `parser` (argparse's or a Django command's)."""
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
        "--poll-window",
        type=float,
        default=POLL_WINDOW_SECONDS,
        help="Seconds to poll the dashboard fragment for its 204s "
        f"(default {POLL_WINDOW_SECONDS:g}).",
    )
    parser.add_argument("--yes", action="store_true", help="Spend the start budget without asking.")


def check_deployment(options: Mapping[str, Any], echo: Callable[[str], None]) -> None:
    """Run every check with these options and write the report; raise Stop unless all pass."""
    url = options["url"]
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise Stop(f"{url!r} is not an http:// or https:// URL.")
    for name in ("expect_rpm", "expect_slots", "requests"):
        if options[name] is not None and options[name] < 1:
            raise Stop(f"--{name.replace('_', '-')} must be at least 1.")
    if not options["poll_window"] > 0:
        raise Stop("--poll-window must be more than 0 seconds.")
    echo(f"coordhub loadcheck of {url}")
    try:
        with connect(url, options["api_key"]) as client:
            report = run(
                client,
                requests=options["requests"],
                max_average=options["max_average"],
                expect_rpm=options["expect_rpm"],
                expect_slots=options["expect_slots"],
                poll_window=options["poll_window"],
                confirm=partial(confirm, assume_yes=options["yes"], echo=echo),
                echo=echo,
            )
    except Unreachable as exc:
        raise Stop(str(exc)) from exc
    except Declined as exc:
        raise Stop("Stopped before starting any operation; nothing written.") from exc
    results, summary = write_report(report, options["out"])
    echo(f"Wrote {results} and {summary}.")
    if report.failed:
        names = ", ".join(check.name for check in report.failed)
        raise Stop(f"{len(report.failed)} of {len(report.checks)} checks failed: {names}.")
    echo(f"All {len(report.checks)} checks passed.")


def confirm(plan: str, *, assume_yes: bool, echo: Callable[[str], None]) -> bool:
    """Show what the starting checks will spend; ask unless told yes or stdin is no terminal."""
    echo(plan)
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        echo("stdin is not a terminal, so going ahead without asking.")
        return True
    try:
        return input("Go ahead? [y/N] ").strip().lower() in ("y", "yes")
    except (EOFError, KeyboardInterrupt):
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """The console entry point: 0 if every check passed, 1 if not, 2 for bad arguments."""
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION)
    add_arguments(parser)
    options = vars(parser.parse_args(argv))
    try:
        check_deployment(options, partial(print, flush=True))
    except Stop as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
