"""Operation kinds: registered functions whose parameters a Django form validates.

A kind is a function taking an `OperationContext` and its cleaned parameters,
registered once under its name with a form describing those parameters:

    # myapp/kinds.py, imported from your AppConfig.ready()
    from django import forms
    from operations.kinds import register


    class ReportParams(forms.Form):
        account = forms.CharField(max_length=64)
        pages = forms.IntegerField(min_value=1, max_value=500)


    @register("report", ReportParams, "Build the monthly report for an account.")
    def build_report(context, account, pages):
        for page in range(pages):
            context.check()  # raises if cancelled, timed out or the lease was lost
            render_page(account, page)
            context.progress((page + 1) * 100 // pages, f"page {page + 1} of {pages}")
        return {"pages": pages}  # stored as the operation's result (must be JSON)

Registering a name twice raises `KindAlreadyRegistered`. The package's modules:
`registry` (register, look up, validate), `context` (what a running kind
receives and the interruptions it raises), `params` (how forms judge JSON
values) and `simulated` (the shipped kind).
"""

from operations.exceptions import (
    Cancelled,
    Interrupted,
    KindAlreadyRegistered,
    LeaseLost,
    TimedOut,
    WorkerStopping,
)
from operations.kinds.context import OperationContext
from operations.kinds.params import JSONObjectField
from operations.kinds.registry import (
    Kind,
    get_kind,
    known_kinds,
    register,
    shown_result,
    unregister,
)

__all__ = [
    "Cancelled",
    "Interrupted",
    "JSONObjectField",
    "Kind",
    "KindAlreadyRegistered",
    "LeaseLost",
    "OperationContext",
    "TimedOut",
    "WorkerStopping",
    "get_kind",
    "known_kinds",
    "register",
    "shown_result",
    "unregister",
]
