"""The environment a child process of a test or benchmark runs with.

A child must see only the configuration it is given: a DATABASE_URL or a
MAX_CONCURRENT_OPERATIONS exported in the developer's shell would otherwise
leak into it. `CONFIGURATION_VARIABLES` is the one list of what coordhub reads
from the environment; `child_environment` drops them all and adds the given
settings on top of the testing profile.
"""

from __future__ import annotations

import os

from coordhub.config import CONFIG_FILE_VARIABLE, PROFILE_VARIABLES, setting_fields

# Read by coordhub/settings.py itself rather than through coordhub.config.
SETTINGS_VARIABLES = ("SECRET_KEY",)
CONFIGURATION_VARIABLES = frozenset(
    {spec.metadata["variable"] for spec in setting_fields()}
    | {*PROFILE_VARIABLES, CONFIG_FILE_VARIABLE, *SETTINGS_VARIABLES}
)
# Where a test appends the figures it measured, one JSON object a line, for bench/faults.py.
FIGURES_FILE_VARIABLE = "COORDHUB_FIGURES_FILE"


def without_configuration() -> dict[str, str]:
    """Return this process's environment without coordhub's configuration variables."""
    return {key: value for key, value in os.environ.items() if key not in CONFIGURATION_VARIABLES}


def child_environment(**settings: str) -> dict[str, str]:
    """Return a child's environment: ours without configuration, the testing profile, `settings`.

    DJANGO_SETTINGS_MODULE is dropped too (pytest sets it in our environment), so the
    child uses coordhub.settings unless `settings` names another module.
    """
    inherited = without_configuration()
    inherited.pop("DJANGO_SETTINGS_MODULE", None)
    return inherited | {"COORDHUB_ENV": "testing", "PYTHONUNBUFFERED": "1"} | settings
