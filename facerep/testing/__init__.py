"""Contract checks for facerep components, for plugin authors (like scikit-learn's ``check_estimator``).

Every component kind has a contract (`facerep.core.interfaces`); this package checks a component
against it on tiny inputs, built from a recipe node through the registry exactly as a run builds it:

    from facerep.testing import check_component, parametrize_with_checks

    for result in check_component("shape_decoder", {"type": "spiral"}):
        print(result)

    @parametrize_with_checks([("shape_decoder", {"type": "spiral"})])
    def test_spiral_contract(subject, check):
        check(subject)

The same checks run from the command line (``facerep plugins check spiral``) and, once facerep is
installed, pytest gets the fixtures of `facerep.testing.pytest_plugin` (``tiny_face_model``,
``tiny_face_batch``, ...) automatically.
"""

from facerep.testing.checks import KIND_CHECKS, Check, checks_for
from facerep.testing.fixtures import (
    tiny_batch,
    tiny_codes,
    tiny_context,
    tiny_face_model,
    tiny_reconstruction,
)
from facerep.testing.kit import (
    CheckResult,
    assert_component,
    check_component,
    format_results,
    make_subject,
    parametrize_with_checks,
    run_check,
)
from facerep.testing.subject import CheckSkipped, ContractError, Subject

__all__ = [
    "KIND_CHECKS",
    "Check",
    "CheckResult",
    "CheckSkipped",
    "ContractError",
    "Subject",
    "assert_component",
    "check_component",
    "checks_for",
    "format_results",
    "make_subject",
    "parametrize_with_checks",
    "run_check",
    "tiny_batch",
    "tiny_codes",
    "tiny_context",
    "tiny_face_model",
    "tiny_reconstruction",
]
