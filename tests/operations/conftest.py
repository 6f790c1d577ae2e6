from __future__ import annotations

import dataclasses

import pytest


@pytest.fixture
def configure(settings):
    """Change coordhub configuration values for one test."""

    def apply(**values: object) -> None:
        settings.COORDHUB = dataclasses.replace(settings.COORDHUB, **values)

    return apply
