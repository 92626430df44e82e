"""Money, volume and price: exact decimal value types with integer storage.

Each type holds a `Decimal` and knows its storage unit:

- `Money` is yuan; stored as fen (0.01 yuan). Exact intermediate costs may
  carry more places; `rounded()` brings them to fen, half-up by default.
- `Volume` is m³; stored as litres (0.001 m³), the precision of the
  platform's decimal(18,3) registers.
- `Price` is yuan per m³; stored as thousandths of a yuan per m³.

A float is refused everywhere: binary floating point cannot hold 0.01.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import ClassVar, Self

from gasbill.domain.errors import AmountOutOfRange, InvalidAmount, UnitMismatch

FEN = Decimal("0.01")
MILLI = Decimal("0.001")
DEFAULT_ROUNDING = ROUND_HALF_UP

ROUNDING_MODES = frozenset(
    {
        "ROUND_HALF_UP",
        "ROUND_HALF_EVEN",
        "ROUND_HALF_DOWN",
        "ROUND_UP",
        "ROUND_DOWN",
        "ROUND_CEILING",
        "ROUND_FLOOR",
    }
)


def to_decimal(value: object, what: str = "value") -> Decimal:
    """The one way to make a Decimal from outside input: never from a float."""
    if isinstance(value, (bool, float)):
        raise InvalidAmount(f"{what} must not be a {type(value).__name__}: {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise InvalidAmount(f"{what} is not a number: {value!r}") from None
    else:
        raise InvalidAmount(f"{what} must be a Decimal, int or str, not {type(value).__name__}")
    if not result.is_finite():
        raise InvalidAmount(f"{what} must be finite, not {value!r}")
    return result


class _Quantity:
    """An immutable Decimal with a unit; arithmetic only within the same unit."""

    __slots__ = ("value",)
    _places: ClassVar[int]  # decimal places of the storage unit
    _unit: ClassVar[str]

    value: Decimal

    def __init__(self, value: Decimal | int | str) -> None:
        object.__setattr__(self, "value", to_decimal(value, type(self).__name__))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    # immutable: a copy is the value itself (copying field by field would set an attribute)
    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        return self

    # -- storage ---------------------------------------------------------
    @classmethod
    def from_storage(cls, units: int) -> Self:
        if isinstance(units, bool) or not isinstance(units, int):
            raise InvalidAmount(f"{cls.__name__} storage must be an int, not {units!r}")
        return cls(Decimal(units).scaleb(-cls._places))

    def to_storage(self) -> int:
        """The exact integer in storage units; refuses a value finer than that."""
        scaled = self.value.scaleb(self._places)
        if scaled != scaled.to_integral_value():
            raise InvalidAmount(
                f"{type(self).__name__} {self.value} is finer than {self._places} decimal "
                "places, its storage unit; round it first"
            )
        return int(scaled)

    # -- arithmetic within one unit ---------------------------------------
    def _same(self, other: object) -> Self:
        if type(other) is not type(self):
            raise UnitMismatch(f"cannot combine {type(self).__name__} with {type(other).__name__}")
        return other

    def __add__(self, other: Self) -> Self:
        return type(self)(self.value + self._same(other).value)

    def __sub__(self, other: Self) -> Self:
        return type(self)(self.value - self._same(other).value)

    def __neg__(self) -> Self:
        return type(self)(-self.value)

    def __abs__(self) -> Self:
        return type(self)(abs(self.value))

    def __mul__(self, factor: Decimal | int) -> Self:
        if isinstance(factor, bool) or not isinstance(factor, (Decimal, int)):
            raise UnitMismatch(f"{type(self).__name__} can only be scaled by a Decimal or int")
        return type(self)(self.value * factor)

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.value == other.value

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.value))

    def __lt__(self, other: Self) -> bool:
        return self.value < self._same(other).value

    def __le__(self, other: Self) -> bool:
        return self.value <= self._same(other).value

    def __gt__(self, other: Self) -> bool:
        return self.value > self._same(other).value

    def __ge__(self, other: Self) -> bool:
        return self.value >= self._same(other).value

    def __bool__(self) -> bool:
        return bool(self.value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}('{self.value}')"

    def __str__(self) -> str:
        return f"{self.value} {self._unit}"

    def is_negative(self) -> bool:
        return self.value < 0


class Money(_Quantity):
    """An amount in yuan. Exact; `rounded()` gives whole fen."""

    __slots__ = ()
    _places = 2
    _unit = "yuan"

    @classmethod
    def zero(cls) -> Money:
        return cls(0)

    @classmethod
    def of_fen(cls, fen: int) -> Money:
        return cls.from_storage(fen)

    @property
    def fen(self) -> int:
        return self.to_storage()

    def rounded(self, rounding: str = DEFAULT_ROUNDING) -> Money:
        """To whole fen with an explicit rounding mode (half-up by default)."""
        if rounding not in ROUNDING_MODES:
            raise InvalidAmount(f"unknown rounding mode {rounding!r}")
        return Money(self.value.quantize(FEN, rounding=rounding))

    def fixed(self) -> str:
        """Two decimals, as money is shown and sent."""
        return f"{self.rounded().value:.2f}"


class Volume(_Quantity):
    """A gas volume in m³, exact to the litre."""

    __slots__ = ()
    _places = 3
    _unit = "m³"

    @classmethod
    def zero(cls) -> Volume:
        return cls(0)

    @classmethod
    def of_litres(cls, litres: int) -> Volume:
        return cls.from_storage(litres)

    @property
    def litres(self) -> int:
        return self.to_storage()

    def is_whole(self) -> bool:
        return self.value == self.value.to_integral_value()

    def fixed(self) -> str:
        return f"{self.value:.3f}"


class Price(_Quantity):
    """A price in yuan per m³, exact to the thousandth of a yuan."""

    __slots__ = ()
    _places = 3
    _unit = "yuan/m³"

    @classmethod
    def of_milli(cls, milli: int) -> Price:
        return cls.from_storage(milli)

    @property
    def milli(self) -> int:
        return self.to_storage()

    def cost(self, volume: Volume) -> Money:
        """The exact (unrounded) cost of a volume at this price."""
        if not isinstance(volume, Volume):
            raise UnitMismatch(f"a Price prices a Volume, not {type(volume).__name__}")
        return Money(self.value * volume.value)

    def fixed(self) -> str:
        return f"{self.value:.3f}"


def money_from_micro(micro_yuan: int) -> Money:
    """Exact cost from millionths of a yuan (litres × thousandths per m³)."""
    return Money(Decimal(micro_yuan).scaleb(-6))


def round_micro_to_fen(micro_yuan: int, rounding: str = DEFAULT_ROUNDING) -> int:
    """Round millionths of a yuan to fen, exactly, with the given mode.

    The rating hot path keeps cost in integer millionths of a yuan; this is
    the same rounding `Money.rounded` does, without building Decimals.
    """
    quotient, remainder = divmod(micro_yuan, 10_000)  # floor division
    if remainder == 0:
        return quotient
    if rounding == ROUND_HALF_UP:
        # half away from zero
        if micro_yuan >= 0:
            return quotient + (1 if remainder >= 5_000 else 0)
        return quotient + (1 if remainder > 5_000 else 0)
    return int(money_from_micro(micro_yuan).rounded(rounding).value.scaleb(2))


@dataclass(frozen=True, slots=True)
class MoneyLimits:
    """The most one operation may move, in fen (config.toml [money]).

    A utility's guard against a slip of the keyboard or an abused role: a
    payment, a refund, an auditor's adjustment or a meter top-up above its
    maximum is refused before anything is recorded.
    """

    payment_fen: int = 500_000  # 5,000.00 yuan
    refund_fen: int = 1_000_000  # 10,000.00 yuan
    adjustment_fen: int = 1_000_000  # 10,000.00 yuan
    top_up_fen: int = 500_000  # 5,000.00 yuan

    def check(self, operation: str, amount_fen: int) -> int:
        """`amount_fen` if `operation` (payment, refund, adjustment, top_up) may move it."""
        limit = getattr(self, f"{operation}_fen", None)
        if not isinstance(limit, int):
            raise ValueError(f"no limit for {operation!r}")
        if isinstance(amount_fen, bool) or not isinstance(amount_fen, int):
            raise InvalidAmount(f"a {operation} is a whole number of fen, not {amount_fen!r}")
        if abs(amount_fen) > limit:
            what = operation.replace("_", "-")
            raise AmountOutOfRange(
                f"a {what} of {_yuan(abs(amount_fen))} is above the maximum of "
                f"{_yuan(limit)} for one {what} (config [money])"
            )
        return amount_fen


def _yuan(fen: int) -> str:
    """Fen as yuan for a message; a number too long to quantize stays in fen."""
    return f"{Money.of_fen(fen).fixed()} yuan" if abs(fen) < 10**20 else f"{fen} fen"


_YUAN_TEXT = re.compile(r"(0|[1-9][0-9]{0,14})(\.[0-9]{1,2})?")


def fen_from_yuan_text(text: str) -> int:
    """Fen from yuan as people type them: `100`, `100.5`, `100.50`.

    Plain digits with at most two decimals: no sign, no exponent (`1e3`), no
    separators, so what a clerk types is exactly what is recorded.
    """
    cleaned = text.strip() if isinstance(text, str) else ""
    if not _YUAN_TEXT.fullmatch(cleaned):
        raise InvalidAmount(f"an amount is yuan with at most 2 decimals, e.g. 100.00, not {text!r}")
    return Money(cleaned).fen
