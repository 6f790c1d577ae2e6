"""The shipped `simulated` kind: placeholder work that sleeps, reporting progress."""

from __future__ import annotations

import time
from typing import Any

from django import forms

from operations.kinds.context import OperationContext
from operations.kinds.params import JSONObjectField
from operations.kinds.registry import register


class SimulatedParams(forms.Form):
    duration = forms.FloatField(
        required=False,
        min_value=0.001,
        max_value=3600,
        help_text="Seconds of simulated work (more than 0, at most 3600; default 2).",
    )
    fail = forms.BooleanField(required=False, help_text="Fail at the end instead of completing.")
    data = JSONObjectField(required=False, help_text="Any JSON object; echoed in the result.")


class SimulatedFailure(Exception):
    """The failure a `simulated` operation was asked for."""


def result_as_shown(params: dict[str, Any], result: object) -> object:
    """A `simulated` result as HTTP answers show it: with `processed_data`, its params' `data`.

    The templates' clients read `result.processed_data`, the data they sent echoed back.
    Shown from the params, the data is not stored a second time in the result. Results
    stored before, which carry `processed_data` themselves, are shown as stored; a
    missing result (not finished, failed) stays missing.
    """
    if not isinstance(result, dict) or "processed_data" in result:
        return result
    return result | {"processed_data": params.get("data") or {}}


@register(
    "simulated",
    SimulatedParams,
    "Placeholder work: sleeps, reporting progress.",
    result_view=result_as_shown,
)
def simulated(
    context: OperationContext,
    duration: float = 2.0,
    fail: bool = False,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Sleep for `duration` seconds in steps, reporting progress and heeding cancellation."""
    started = time.monotonic()
    steps = max(1, min(100, round(duration * 10)))
    for step in range(1, steps + 1):
        context.sleep(started + duration * step / steps - time.monotonic())
        context.progress(step * 100 // steps, f"step {step} of {steps}")
    if fail:
        raise SimulatedFailure("Simulated failure, as requested by the 'fail' parameter.")
    return {"duration": duration}  # `data` is shown back from the params: see result_as_shown
