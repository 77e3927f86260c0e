"""The built-in checks, registered in ``policies.engine.CHECKS`` when this package is imported:
through the same door as a user's own (``@CHECKS.register``)."""

from policies.checks import (  # noqa: F401
    breaking,
    dependencies,
    drift,
    examples,
    oas,
    security,
    service_levels,
    versioning,
)
