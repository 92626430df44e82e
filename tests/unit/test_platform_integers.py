"""JSON's 1.0 is an integer, as JSON Schema (so OpenAPI) counts it; 1.5 and huge ones are not."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from gasbill.adapters.platform.jsontext import loads_exact
from gasbill.adapters.platform.push_models import HistoryQuery


def test_an_integral_number_counts_as_an_integer():
    body = loads_exact(b'{"month": 2.0, "end_day": 1.00}')
    query = HistoryQuery.model_validate(body)
    assert (query.month, query.end_day) == (2, 1)


@pytest.mark.parametrize(
    "value",
    [Decimal("1.5"), Decimal("1E+100000000"), Decimal("NaN"), Decimal("sNaN"), float("inf"), "1"],
)
def test_anything_else_is_refused_as_a_validation_error(value):
    with pytest.raises(ValidationError):
        HistoryQuery.model_validate({"end_day": value})
