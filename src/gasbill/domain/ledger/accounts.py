"""Ledger accounts: per customer `prepaid` and `meter_credit`, global cash, revenue and the rest."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Self

from gasbill.domain.errors import InvalidAccountCode


class AccountKind(enum.StrEnum):
    PREPAID = "prepaid"  # per customer: money we hold for them
    METER_CREDIT = "meter_credit"  # per customer: money the meter should hold
    CASH = "cash"  # per payment channel
    REVENUE = "revenue"  # per revenue stream ("gas")
    ADJUSTMENTS = "adjustments"
    REFUNDS = "refunds"


CUSTOMER_KINDS = frozenset({AccountKind.PREPAID, AccountKind.METER_CREDIT})
_QUALIFIED = CUSTOMER_KINDS | {AccountKind.CASH, AccountKind.REVENUE}
_QUALIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")


@dataclass(frozen=True, slots=True, order=True)
class AccountCode:
    """A ledger account: `prepaid:<account_id>`, `cash:<channel>`, `adjustments`, ..."""

    kind: AccountKind
    qualifier: str = ""  # the customer account, the channel or the stream; "" for the rest

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", AccountKind(self.kind))
        except ValueError:
            raise InvalidAccountCode(f"unknown ledger account kind {self.kind!r}") from None
        if not isinstance(self.qualifier, str):
            raise InvalidAccountCode(f"account qualifier must be a str, not {self.qualifier!r}")
        if self.kind in _QUALIFIED:
            if not _QUALIFIER.fullmatch(self.qualifier):
                raise InvalidAccountCode(
                    f"{self.kind}: needs a qualifier of letters, digits, '_', '.' or '-' "
                    f"(at most 64), not {self.qualifier!r}"
                )
        elif self.qualifier:
            raise InvalidAccountCode(f"{self.kind} takes no qualifier, got {self.qualifier!r}")

    @classmethod
    def prepaid(cls, account_id: str) -> Self:
        return cls(AccountKind.PREPAID, account_id)

    @classmethod
    def meter_credit(cls, account_id: str) -> Self:
        return cls(AccountKind.METER_CREDIT, account_id)

    @classmethod
    def cash(cls, channel: str) -> Self:
        return cls(AccountKind.CASH, channel)

    @classmethod
    def revenue(cls, stream: str = "gas") -> Self:
        return cls(AccountKind.REVENUE, stream)

    @classmethod
    def adjustments(cls) -> Self:
        return cls(AccountKind.ADJUSTMENTS)

    @classmethod
    def refunds(cls) -> Self:
        return cls(AccountKind.REFUNDS)

    @classmethod
    def parse(cls, code: str) -> Self:
        """The inverse of `str()`: only the canonical spelling is accepted."""
        if not isinstance(code, str):
            raise InvalidAccountCode(f"an account code is a str, not {type(code).__name__}")
        kind, sep, qualifier = code.partition(":")
        if sep and not qualifier:
            raise InvalidAccountCode(f"account code {code!r} ends with ':'")
        try:
            return cls(AccountKind(kind), qualifier)
        except ValueError:
            raise InvalidAccountCode(f"unknown ledger account {code!r}") from None

    @property
    def is_customer(self) -> bool:
        return self.kind in CUSTOMER_KINDS

    @property
    def account_id(self) -> str | None:
        """The customer account this ledger account belongs to, if any."""
        return self.qualifier if self.is_customer else None

    def __str__(self) -> str:
        return f"{self.kind}:{self.qualifier}" if self.qualifier else str(self.kind)
