"""A bounded schema-driven fuzz of the API (schemathesis over /openapi.json): whatever the
schema allows, the server answers without a 5xx and keeps answering /healthz."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

EXAMPLES = 8  # per operation: a smoke fuzz, bounded in time


@pytest.mark.slow
def test_no_operation_answers_a_server_error(app, client):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    for operation in operations:
        _fuzz(operation)
    assert client.get("/healthz").status_code == 200


def _fuzz(operation) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=5000, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(case):
        response = case.call_and_validate(checks=[not_a_server_error])
        assert response.status_code < 500, (operation.label, response.text)

    fuzz()
