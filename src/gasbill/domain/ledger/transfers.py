"""Transfers: one movement of fen between two ledger accounts, and groups of them."""

from __future__ import annotations

import enum
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import datetime

from gasbill.domain.errors import AmountOutOfRange, InvalidTransfer
from gasbill.domain.ledger.accounts import AccountCode

# Any balance figure (posted or pending totals) of a customer's ledger account stays
# within ±MAX_BALANCE fen: ten trillion yuan, far inside BigInteger (±9.2e18), so no
# sum of two bounded figures can overflow a column on either database.
MAX_BALANCE = 10**15
# One transfer moves at most this much; use cases set far lower maxima (config [money]).
MAX_AMOUNT = MAX_BALANCE


class TransferKind(enum.StrEnum):
    """What a transfer is for; the two-phase step is its `status`."""

    PAYMENT = "payment"
    CHARGE = "charge"
    TRUE_UP = "true_up"
    TOP_UP = "top_up"
    ADJUSTMENT = "adjustment"
    REFUND = "refund"
    REVERSAL = "reversal"
    HOLD = "hold"  # any other reservation


class TransferStatus(enum.StrEnum):
    POSTED = "posted"  # single phase: moves the amount now
    PENDING = "pending"  # a hold: reserves the amount
    POST_PENDING = "post_pending"  # resolves a hold: moves up to the held amount
    VOID_PENDING = "void_pending"  # resolves a hold: releases it


class HoldAction(enum.StrEnum):
    POST = "post"
    VOID = "void"


RESOLUTIONS = frozenset({TransferStatus.POST_PENDING, TransferStatus.VOID_PENDING})
# corrections must say why and who made them
_NEEDS_REASON = frozenset({TransferKind.ADJUSTMENT, TransferKind.REVERSAL})
# a request is the same if everything but these is; ids and clocks differ on a replay
_NOT_PART_OF_REQUEST = frozenset({"id", "recorded_at"})


def new_transfer_id() -> str:
    return uuid.uuid4().hex


def _aware(value: object, what: str) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidTransfer(f"{what} must be an aware datetime, not {value!r}")
    return value


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidTransfer(f"{what} must be a non-empty str, not {value!r}")
    return value


def check_amount(amount: object) -> int:
    """An amount in fen: a positive int within BigInteger; never a bool or a float."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidTransfer(
            f"a transfer amount is a whole number of fen (int), not {type(amount).__name__} "
            f"{amount!r}"
        )
    if amount <= 0:
        raise InvalidTransfer(f"a transfer amount must be positive, not {amount} fen")
    if amount > MAX_AMOUNT:
        raise AmountOutOfRange(
            f"a transfer amount of {amount} fen is above the ledger's bound of {MAX_AMOUNT} fen"
        )
    return amount


@dataclass(frozen=True, slots=True)
class Transfer:
    """One movement of `amount` fen from `debit_account` to `credit_account`."""

    id: str
    idempotency_key: str
    debit_account: AccountCode
    credit_account: AccountCode
    amount: int  # fen
    kind: TransferKind
    effective_at: datetime  # when it counts, e.g. for a meter's balance as of a reading
    recorded_at: datetime  # when we wrote it
    status: TransferStatus = TransferStatus.POSTED
    pending_id: str | None = None  # the hold a post/void resolves
    reverses: str | None = None  # the transfer a reversal undoes
    reason: str = ""
    actor: str = ""

    def __post_init__(self) -> None:
        _text(self.id, "transfer id")
        _text(self.idempotency_key, "idempotency key")
        for side in (self.debit_account, self.credit_account):
            if not isinstance(side, AccountCode):
                raise InvalidTransfer(f"accounts must be AccountCode, not {side!r}")
        if self.debit_account == self.credit_account:
            raise InvalidTransfer(f"a transfer cannot move money within {self.debit_account}")
        check_amount(self.amount)
        try:
            object.__setattr__(self, "kind", TransferKind(self.kind))
            object.__setattr__(self, "status", TransferStatus(self.status))
        except ValueError as exc:
            raise InvalidTransfer(str(exc)) from None
        _aware(self.effective_at, "effective_at")
        _aware(self.recorded_at, "recorded_at")
        if not isinstance(self.reason, str) or not isinstance(self.actor, str):
            raise InvalidTransfer("reason and actor must be str")
        if self.kind in _NEEDS_REASON and not (self.reason.strip() and self.actor.strip()):
            raise InvalidTransfer(f"a {self.kind} needs a reason and an actor")
        if (self.status in RESOLUTIONS) != (self.pending_id is not None):
            raise InvalidTransfer("a post or void names its hold (pending_id), nothing else does")
        if self.pending_id is not None:
            _text(self.pending_id, "pending_id")
        if (self.kind is TransferKind.REVERSAL) != (self.reverses is not None):
            raise InvalidTransfer("a reversal names what it reverses (reverses), nothing else does")
        if self.reverses is not None:
            _text(self.reverses, "reverses")
            if self.status is not TransferStatus.POSTED:
                raise InvalidTransfer("a reversal is a posted transfer")

    @property
    def is_hold(self) -> bool:
        return self.status is TransferStatus.PENDING

    @property
    def is_resolution(self) -> bool:
        return self.status in RESOLUTIONS

    @property
    def moves_money(self) -> bool:
        """Whether it changes posted balances (a hold or a void does not)."""
        return self.status in (TransferStatus.POSTED, TransferStatus.POST_PENDING)

    def request(self) -> tuple[object, ...]:
        """What a replay must repeat exactly: all but the id and the recording time."""
        return tuple(
            getattr(self, f.name) for f in fields(self) if f.name not in _NOT_PART_OF_REQUEST
        )

    def same_request(self, other: Transfer) -> bool:
        return self.request() == other.request()

    def __str__(self) -> str:
        return (
            f"{self.kind} {self.status} {self.id} [{self.idempotency_key}]: "
            f"{self.amount} fen {self.debit_account} -> {self.credit_account}"
        )


@dataclass(frozen=True, slots=True)
class TransferGroup:
    """Transfers applied together, all or none (a payment and its top-up hold, say)."""

    transfers: tuple[Transfer, ...]

    def __post_init__(self) -> None:
        transfers = tuple(self.transfers)
        object.__setattr__(self, "transfers", transfers)
        if not transfers:
            raise InvalidTransfer("a transfer group needs at least one transfer")
        if not all(isinstance(t, Transfer) for t in transfers):
            raise InvalidTransfer("a transfer group holds Transfers only")
        for what, values in (
            ("id", [t.id for t in transfers]),
            ("idempotency key", [t.idempotency_key for t in transfers]),
        ):
            repeated = [v for v, n in Counter(values).items() if n > 1]
            if repeated:
                raise InvalidTransfer(f"a transfer group repeats the {what} {repeated[0]!r}")

    def __iter__(self) -> Iterator[Transfer]:
        return iter(self.transfers)

    def __len__(self) -> int:
        return len(self.transfers)
