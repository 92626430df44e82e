"""Amounts in Chinese capitals as receipts write them (会计基础工作规范 §52)."""

from __future__ import annotations

import pytest

from gasbill.web.capitals import amount_in_capitals


@pytest.mark.parametrize(
    ("fen", "words"),
    [
        (123456, "壹仟贰佰叁拾肆元伍角陆分"),
        (10000, "壹佰元整"),
        (100500, "壹仟零伍元整"),
        (101000, "壹仟零壹拾元整"),
        (1000, "壹拾元整"),
        (10000000, "壹拾万元整"),
        (10001000000, "壹亿零壹万元整"),
        (1000000100, "壹仟万零壹元整"),
        (5000, "伍拾元整"),
        (2030, "贰拾元叁角整"),
        (1005, "壹拾元零伍分"),
        (50, "伍角整"),
        (56, "伍角陆分"),
        (5, "伍分"),
        (0, "零元整"),
        (-1234, "负壹拾贰元叁角肆分"),
        (100000001, "壹佰万元零壹分"),
    ],
)
def test_capitals(fen: int, words: str) -> None:
    assert amount_in_capitals(fen) == words


def test_too_large_is_refused() -> None:
    with pytest.raises(ValueError, match="too large"):
        amount_in_capitals(10**20 * 100)
