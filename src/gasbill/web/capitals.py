"""Amounts in Chinese capitals (大写金额), as a receipt writes them beside the figures.

Capitals cannot be altered by adding a stroke, which is why receipts and
cheques carry them. The rules followed are those of the accounting norms
(会计基础工作规范 §52): 壹拾 for ten, one 零 for any run of zeros inside the
number, 整 after 元 or 角 when there are no 分, and no 零元 before 角/分.
"""

from __future__ import annotations

DIGITS = "零壹贰叁肆伍陆柒捌玖"
SMALL_UNITS = ("", "拾", "佰", "仟")
BIG_UNITS = ("", "万", "亿", "万亿")


def _group(value: int) -> str:
    """One group of up to four digits (0 < value < 10000), zeros inside folded to one 零."""
    text = ""
    pending_zero = False
    for position in (3, 2, 1, 0):
        digit = (value // 10**position) % 10
        if digit == 0:
            pending_zero = bool(text)
            continue
        if pending_zero:
            text += DIGITS[0]
            pending_zero = False
        text += DIGITS[digit] + SMALL_UNITS[position]
    return text


def _yuan(value: int) -> str:
    groups = []
    while value:
        groups.append(value % 10_000)
        value //= 10_000
    if len(groups) > len(BIG_UNITS):
        raise ValueError("amount too large to write in capitals")
    text = ""
    zero_before = False
    for index in reversed(range(len(groups))):
        group = groups[index]
        if group == 0:
            zero_before = bool(text)
            continue
        if text and (zero_before or group < 1000):
            text += DIGITS[0]
        text += _group(group) + BIG_UNITS[index]
        zero_before = False
    return text


def amount_in_capitals(fen: int) -> str:
    """1234.56 yuan (123456 fen) → 壹仟贰佰叁拾肆元伍角陆分; 100 yuan → 壹佰元整."""
    if fen < 0:
        return "负" + amount_in_capitals(-fen)
    yuan, rest = divmod(fen, 100)
    jiao, fen_digit = divmod(rest, 10)
    if yuan == 0 and rest == 0:
        return "零元整"
    text = _yuan(yuan) + "元" if yuan else ""
    if jiao:
        text += DIGITS[jiao] + "角"
    elif fen_digit and yuan:
        text += DIGITS[0]
    text += DIGITS[fen_digit] + "分" if fen_digit else "整"
    return text
