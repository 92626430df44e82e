"""The ledger rules: double entry, append-only, two-phase holds, in integer fen.

A `Transfer` moves a positive amount of fen FROM its debit account TO its
credit account. The **balance** of an account is its credits minus its
debits, so money an account holds is positive and the accounts money comes
from go negative:

    payment   cash:wechat   -> prepaid:A1      prepaid +, cash −
    charge    prepaid:A1    -> revenue:gas     prepaid −, revenue +
    top-up    prepaid:A1    -> meter_credit:A1 (a hold, then posted)
    refund    prepaid:A1    -> refunds

`prepaid` is what we hold for the customer, `meter_credit` what the meter
should hold, `revenue:gas` what was earned, `refunds` what was paid back,
and `cash:<channel>` is minus what came in through that channel. Every
transfer adds the same amount to one side and takes it from the other, so
the balances of all accounts always sum to zero.

Two phases: a `pending` transfer (a hold) moves nothing; it counts in the
accounts' pending figures until one `post_pending` (moves up to the held
amount, the rest is released) or one `void_pending` (releases it all)
resolves it. Holds never expire. Available balance = posted balance −
pending debits: a hold reserves money on the side it comes from only.

Posted transfers are never changed: a mistake is corrected by a reversal, a
new transfer with the accounts swapped, at most one per original. A
reversal is final (it cannot itself be reversed: record the movement again
as a new transfer), and a hold is not reversed but voided.

Everything here is pure. `check_transfer` and `check_group` take a
`LedgerView` of what is already recorded, so the database ledger runs the
same rules as the in-memory `Ledger` below.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Protocol, Self

from gasbill.domain.errors import (
    AlreadyReversed,
    DuplicateTransferId,
    HoldAlreadyResolved,
    IdempotencyConflict,
    InvalidAccountCode,
    InvalidResolution,
    InvalidTransfer,
    LedgerInvariantBroken,
    OverdraftRefused,
    ReversalRefused,
    UnknownTransfer,
)

MAX_AMOUNT = 2**63 - 1  # fen are stored as BigInteger


# -- accounts -----------------------------------------------------------------


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


# -- transfers ----------------------------------------------------------------


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
_RESOLVED_BY = {
    HoldAction.POST: TransferStatus.POST_PENDING,
    HoldAction.VOID: TransferStatus.VOID_PENDING,
}
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
        raise InvalidTransfer(f"a transfer amount of {amount} fen does not fit in 64 bits")
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


def resolve_hold(
    hold: Transfer,
    action: HoldAction,
    amount: int | None = None,
    *,
    key: str,
    at: datetime,
    effective_at: datetime | None = None,
    reason: str = "",
    actor: str = "",
    transfer_id: str | None = None,
) -> Transfer:
    """The post (of `amount`, the whole hold by default) or void that resolves `hold`."""
    if not hold.is_hold:
        raise InvalidResolution(f"only a pending transfer can be posted or voided: {hold}")
    action = HoldAction(action)
    if amount is None:
        amount = hold.amount
    _check_resolution_amount(hold, action, check_amount(amount))
    return Transfer(
        id=transfer_id or new_transfer_id(),
        idempotency_key=key,
        debit_account=hold.debit_account,
        credit_account=hold.credit_account,
        amount=amount,
        kind=hold.kind,  # a posted top-up is still a top-up
        effective_at=at if effective_at is None else effective_at,
        recorded_at=at,
        status=_RESOLVED_BY[action],
        pending_id=hold.id,
        reason=reason,
        actor=actor,
    )


def _check_resolution_amount(hold: Transfer, action: HoldAction, amount: int) -> None:
    if action is HoldAction.POST and amount > hold.amount:
        raise InvalidResolution(f"cannot post {amount} fen of a hold of {hold.amount}: {hold.id}")
    if action is HoldAction.VOID and amount != hold.amount:
        raise InvalidResolution(f"a void releases the whole hold of {hold.amount} fen: {hold.id}")


def reverse(
    original: Transfer,
    *,
    reason: str,
    actor: str,
    key: str,
    at: datetime,
    effective_at: datetime | None = None,
    transfer_id: str | None = None,
) -> Transfer:
    """The transfer that undoes `original`: same amount, accounts swapped."""
    _check_reversible(original)
    return Transfer(
        id=transfer_id or new_transfer_id(),
        idempotency_key=key,
        debit_account=original.credit_account,
        credit_account=original.debit_account,
        amount=original.amount,
        kind=TransferKind.REVERSAL,
        effective_at=at if effective_at is None else effective_at,
        recorded_at=at,
        reverses=original.id,
        reason=reason,
        actor=actor,
    )


def _check_reversible(original: Transfer) -> None:
    if original.is_hold:
        raise ReversalRefused(f"a hold is voided, not reversed: {original.id}")
    if original.status is TransferStatus.VOID_PENDING:
        raise ReversalRefused(f"a void moved nothing to reverse: {original.id}")
    if original.kind is TransferKind.REVERSAL:
        # one level only: a reversal of a reversal makes chains no auditor can follow
        raise ReversalRefused(
            f"a reversal is final; record the movement again instead: {original.id}"
        )


# -- balances -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Balance:
    """An account's totals in fen; also used for the change one transfer makes."""

    debits_posted: int = 0
    credits_posted: int = 0
    debits_pending: int = 0
    credits_pending: int = 0

    @property
    def posted(self) -> int:
        """Credits minus debits of what has moved."""
        return self.credits_posted - self.debits_posted

    @property
    def pending(self) -> int:
        """Credits minus debits of what holds would move."""
        return self.credits_pending - self.debits_pending

    @property
    def available(self) -> int:
        """What can still be spent: incoming holds are not counted until posted."""
        return self.posted - self.debits_pending

    def __add__(self, other: Balance) -> Balance:
        return Balance(
            self.debits_posted + other.debits_posted,
            self.credits_posted + other.credits_posted,
            self.debits_pending + other.debits_pending,
            self.credits_pending + other.credits_pending,
        )


ZERO_BALANCE = Balance()


def balance_changes(
    transfer: Transfer, hold: Transfer | None = None
) -> tuple[tuple[AccountCode, Balance], tuple[AccountCode, Balance]]:
    """What applying `transfer` adds to its debit and its credit account.

    A post or void also needs the `hold` it resolves, whose amount it releases.
    """
    amount = transfer.amount
    released = 0
    if transfer.is_resolution:
        if hold is None or hold.id != transfer.pending_id:
            raise UnknownTransfer(f"{transfer.id} resolves {transfer.pending_id}, not given")
        released = hold.amount
    match transfer.status:
        case TransferStatus.POSTED:
            debit, credit = Balance(debits_posted=amount), Balance(credits_posted=amount)
        case TransferStatus.PENDING:
            debit, credit = Balance(debits_pending=amount), Balance(credits_pending=amount)
        case TransferStatus.POST_PENDING:
            debit = Balance(debits_posted=amount, debits_pending=-released)
            credit = Balance(credits_posted=amount, credits_pending=-released)
        case TransferStatus.VOID_PENDING:
            debit, credit = Balance(debits_pending=-released), Balance(credits_pending=-released)
    return (transfer.debit_account, debit), (transfer.credit_account, credit)


def balances_from_transfers(
    transfers: Iterable[Transfer], *, as_of: datetime | None = None
) -> dict[AccountCode, Balance]:
    """Every account's balance recomputed from scratch (effective up to `as_of`).

    Posted figures sum the posted transfers and posts; pending figures sum
    the holds that no post or void (effective by then) has resolved.
    """
    chosen = [t for t in transfers if as_of is None or t.effective_at <= as_of]
    resolved = {t.pending_id for t in chosen if t.is_resolution}
    sums: dict[AccountCode, list[int]] = {}

    def add(account: AccountCode, slot: int, amount: int) -> None:
        sums.setdefault(account, [0, 0, 0, 0])[slot] += amount

    for t in chosen:
        if t.moves_money:
            add(t.debit_account, 0, t.amount)
            add(t.credit_account, 1, t.amount)
        elif t.is_hold and t.id not in resolved:
            add(t.debit_account, 2, t.amount)
            add(t.credit_account, 3, t.amount)
        else:
            # a resolved hold and a void leave no trace; keep the accounts listed
            sums.setdefault(t.debit_account, [0, 0, 0, 0])
            sums.setdefault(t.credit_account, [0, 0, 0, 0])
    return {account: Balance(*s) for account, s in sums.items()}


def balance_from_transfers(
    transfers: Iterable[Transfer], account: AccountCode, *, as_of: datetime | None = None
) -> Balance:
    """One account's balance from the transfers (all of them, or effective by `as_of`)."""
    return balances_from_transfers(transfers, as_of=as_of).get(account, ZERO_BALANCE)


def verify_transfers(transfers: Sequence[Transfer]) -> dict[AccountCode, Balance]:
    """Check a whole ledger's history and return its balances.

    Ids and keys are unique; each post or void names a hold and each
    reversal a reversible transfer in the history; nothing is resolved or
    reversed twice; the balances sum to zero.
    """
    by_id: dict[str, Transfer] = {}
    keys: set[str] = set()
    resolutions: Counter[str] = Counter()
    reversals: Counter[str] = Counter()
    for t in transfers:
        if t.id in by_id or t.idempotency_key in keys:
            raise LedgerInvariantBroken(f"id or key recorded twice: {t}")
        by_id[t.id] = t
        keys.add(t.idempotency_key)
        if t.pending_id is not None:
            resolutions[t.pending_id] += 1
        if t.reverses is not None:
            reversals[t.reverses] += 1
    for pending_id, n in resolutions.items():
        hold = by_id.get(pending_id)
        if hold is None or not hold.is_hold or n > 1:
            raise LedgerInvariantBroken(f"hold {pending_id} resolved {n} times or not a hold")
    for t in transfers:
        hold = by_id[t.pending_id] if t.pending_id is not None else None
        if hold is not None and not _fits(t, hold):
            raise LedgerInvariantBroken(f"{t} does not fit its hold {hold}")
    for original_id, n in reversals.items():
        original = by_id.get(original_id)
        if original is None or not original.moves_money or original.reverses or n > 1:
            raise LedgerInvariantBroken(f"{original_id} reversed {n} times or not reversible")
    balances = balances_from_transfers(transfers)
    for account, b in balances.items():
        if min(b.debits_posted, b.credits_posted, b.debits_pending, b.credits_pending) < 0:
            raise LedgerInvariantBroken(f"negative totals on {account}: {b}")
    if sum(b.posted for b in balances.values()) or sum(b.pending for b in balances.values()):
        raise LedgerInvariantBroken("the balances of all accounts do not sum to zero")
    return balances


# -- the rules ----------------------------------------------------------------


class LedgerView(Protocol):
    """What the rules need to know about what is already recorded."""

    def transfer(self, transfer_id: str) -> Transfer | None: ...

    def transfer_by_key(self, idempotency_key: str) -> Transfer | None: ...

    def resolution_of(self, pending_id: str) -> Transfer | None: ...

    def reversal_of(self, transfer_id: str) -> Transfer | None: ...

    def balance(self, account: AccountCode) -> Balance: ...

    def overdraft_allowance(self, account: AccountCode) -> int | None:
        """How far below zero its available balance may go; None: no limit."""
        ...


def check_transfer(
    transfer: Transfer, view: LedgerView, *, enforce_limits: bool = True
) -> Transfer | None:
    """Validate `transfer` against what `view` holds.

    Returns the transfer first recorded under the same key when this is a
    replay (record nothing then), None when it is new and may be recorded.
    Limits apply to new debits (posted or held), never to a post, a void or a
    reversal, which record what has happened; pass `enforce_limits=False`
    for other facts that must be recorded whatever the balance (gas burnt).
    """
    first = view.transfer_by_key(transfer.idempotency_key)
    if first is not None:
        if first.same_request(transfer):
            return first
        raise IdempotencyConflict(
            f"key {transfer.idempotency_key!r} was used for a different transfer: {first}"
        )
    if view.transfer(transfer.id) is not None:
        raise DuplicateTransferId(f"transfer id {transfer.id!r} is already recorded")
    hold = None
    if transfer.pending_id is not None:
        hold = _check_resolves(transfer, transfer.pending_id, view)
    if transfer.reverses is not None:
        _check_reverses(transfer, transfer.reverses, view)
    if enforce_limits and transfer.kind is not TransferKind.REVERSAL and not transfer.is_resolution:
        allowance = view.overdraft_allowance(transfer.debit_account)
        if allowance is not None:
            (account, change), _ = balance_changes(transfer, hold)
            after = view.balance(account) + change
            if after.available < -allowance:
                raise OverdraftRefused(
                    f"{transfer.amount} fen from {account} would leave {after.available} "
                    f"available, below the allowance of -{allowance}"
                )
    return None


def _check_resolves(transfer: Transfer, pending_id: str, view: LedgerView) -> Transfer:
    hold = view.transfer(pending_id)
    if hold is None:
        raise UnknownTransfer(f"{transfer.id} resolves unknown hold {pending_id}")
    if not hold.is_hold:
        raise InvalidResolution(f"{pending_id} is not a hold: {hold}")
    earlier = view.resolution_of(pending_id)
    if earlier is not None:
        raise HoldAlreadyResolved(f"hold {pending_id} was already resolved by {earlier}")
    if not _fits(transfer, hold):
        raise InvalidResolution(f"{transfer} does not fit its hold {hold}")
    return hold


def _fits(resolution: Transfer, hold: Transfer) -> bool:
    """Same accounts and kind; a post of at most, a void of exactly, the held amount."""
    if (resolution.debit_account, resolution.credit_account, resolution.kind) != (
        hold.debit_account,
        hold.credit_account,
        hold.kind,
    ):
        return False
    if resolution.status is TransferStatus.POST_PENDING:
        return resolution.amount <= hold.amount
    return resolution.amount == hold.amount


def _check_reverses(transfer: Transfer, original_id: str, view: LedgerView) -> None:
    original = view.transfer(original_id)
    if original is None:
        raise UnknownTransfer(f"{transfer.id} reverses unknown transfer {original_id}")
    _check_reversible(original)
    earlier = view.reversal_of(original_id)
    if earlier is not None:
        raise AlreadyReversed(f"{original_id} was already reversed by {earlier}")
    if (transfer.debit_account, transfer.credit_account, transfer.amount) != (
        original.credit_account,
        original.debit_account,
        original.amount,
    ):
        raise ReversalRefused(f"{transfer} does not mirror {original}")


class _Staged:
    """A view of `base` plus transfers checked earlier in the same group."""

    def __init__(self, base: LedgerView) -> None:
        self.base = base
        self.by_id: dict[str, Transfer] = {}
        self.by_key: dict[str, Transfer] = {}
        self.resolutions: dict[str, Transfer] = {}
        self.reversals: dict[str, Transfer] = {}
        self.changes: dict[AccountCode, Balance] = {}

    def add(self, transfer: Transfer) -> None:
        hold = self.transfer(transfer.pending_id) if transfer.pending_id else None
        self.by_id[transfer.id] = transfer
        self.by_key[transfer.idempotency_key] = transfer
        if transfer.pending_id is not None:
            self.resolutions[transfer.pending_id] = transfer
        if transfer.reverses is not None:
            self.reversals[transfer.reverses] = transfer
        for account, change in balance_changes(transfer, hold):
            self.changes[account] = self.changes.get(account, ZERO_BALANCE) + change

    def transfer(self, transfer_id: str) -> Transfer | None:
        return self.by_id.get(transfer_id) or self.base.transfer(transfer_id)

    def transfer_by_key(self, idempotency_key: str) -> Transfer | None:
        return self.by_key.get(idempotency_key) or self.base.transfer_by_key(idempotency_key)

    def resolution_of(self, pending_id: str) -> Transfer | None:
        return self.resolutions.get(pending_id) or self.base.resolution_of(pending_id)

    def reversal_of(self, transfer_id: str) -> Transfer | None:
        return self.reversals.get(transfer_id) or self.base.reversal_of(transfer_id)

    def balance(self, account: AccountCode) -> Balance:
        return self.base.balance(account) + self.changes.get(account, ZERO_BALANCE)

    def overdraft_allowance(self, account: AccountCode) -> int | None:
        return self.base.overdraft_allowance(account)


def check_group(
    group: TransferGroup, view: LedgerView, *, enforce_limits: bool = True
) -> tuple[Transfer, ...] | None:
    """Validate a group as one: None if all of it may be recorded, in order.

    A replay of the whole group returns the transfers first recorded. A group
    of which only some keys are known is a conflict: the first one was
    applied whole, so this cannot be the same request.
    """
    firsts = [view.transfer_by_key(t.idempotency_key) for t in group]
    if any(first is not None for first in firsts):
        pairs = zip(firsts, group, strict=True)
        if all(first is not None and first.same_request(t) for first, t in pairs):
            return tuple(first for first in firsts if first is not None)
        raise IdempotencyConflict(
            "a transfer group reuses keys of other or partly applied transfers: "
            + ", ".join(t.idempotency_key for t, f in zip(group, firsts, strict=True) if f)
        )
    staged = _Staged(view)
    for transfer in group:
        check_transfer(transfer, staged, enforce_limits=enforce_limits)
        staged.add(transfer)
    return None


# -- the in-memory ledger -----------------------------------------------------


class Ledger:
    """An append-only ledger in memory: the rules above, with state kept in dicts."""

    def __init__(self, overdraft_allowances: Mapping[AccountCode, int] | None = None) -> None:
        self._transfers: list[Transfer] = []
        self._by_id: dict[str, Transfer] = {}
        self._by_key: dict[str, Transfer] = {}
        self._resolutions: dict[str, Transfer] = {}
        self._reversals: dict[str, Transfer] = {}
        self._balances: dict[AccountCode, Balance] = {}
        self._allowances: dict[AccountCode, int] = {}
        for account, allowance in (overdraft_allowances or {}).items():
            self.set_overdraft_allowance(account, allowance)

    # -- LedgerView
    def transfer(self, transfer_id: str) -> Transfer | None:
        return self._by_id.get(transfer_id)

    def transfer_by_key(self, idempotency_key: str) -> Transfer | None:
        return self._by_key.get(idempotency_key)

    def resolution_of(self, pending_id: str) -> Transfer | None:
        return self._resolutions.get(pending_id)

    def reversal_of(self, transfer_id: str) -> Transfer | None:
        return self._reversals.get(transfer_id)

    def balance(self, account: AccountCode) -> Balance:
        return self._balances.get(account, ZERO_BALANCE)

    def overdraft_allowance(self, account: AccountCode) -> int | None:
        return self._allowances.get(account)

    # -- changes
    def set_overdraft_allowance(self, account: AccountCode, allowance: int | None) -> None:
        """Limit how far below zero `account` may be debited; None lifts the limit."""
        if allowance is None:
            self._allowances.pop(account, None)
            return
        if isinstance(allowance, bool) or not isinstance(allowance, int) or allowance < 0:
            raise InvalidTransfer(f"an overdraft allowance is fen >= 0, not {allowance!r}")
        self._allowances[account] = allowance

    def apply(self, transfer: Transfer, *, enforce_limits: bool = True) -> Transfer:
        """Record `transfer`; on a replay, return the first one and change nothing."""
        first = check_transfer(transfer, self, enforce_limits=enforce_limits)
        if first is not None:
            return first
        self._record(transfer)
        return transfer

    def apply_group(
        self, group: TransferGroup | Iterable[Transfer], *, enforce_limits: bool = True
    ) -> tuple[Transfer, ...]:
        """Record every transfer of the group or, if one is refused, none."""
        if not isinstance(group, TransferGroup):
            group = TransferGroup(tuple(group))
        firsts = check_group(group, self, enforce_limits=enforce_limits)
        if firsts is not None:
            return firsts
        for transfer in group:
            self._record(transfer)
        return group.transfers

    def _record(self, transfer: Transfer) -> None:
        hold = self._by_id[transfer.pending_id] if transfer.pending_id else None
        for account, change in balance_changes(transfer, hold):
            self._balances[account] = self.balance(account) + change
        self._transfers.append(transfer)
        self._by_id[transfer.id] = transfer
        self._by_key[transfer.idempotency_key] = transfer
        if transfer.pending_id is not None:
            self._resolutions[transfer.pending_id] = transfer
        if transfer.reverses is not None:
            self._reversals[transfer.reverses] = transfer

    # -- reading
    @property
    def transfers(self) -> tuple[Transfer, ...]:
        return tuple(self._transfers)

    def balances(self) -> Mapping[AccountCode, Balance]:
        return dict(self._balances)

    def open_holds(self) -> tuple[Transfer, ...]:
        """Holds not yet posted or voided, oldest first."""
        return tuple(t for t in self._transfers if t.is_hold and t.id not in self._resolutions)

    def verify(self) -> None:
        """Recompute every balance from the transfers; raise if anything disagrees."""
        recomputed = verify_transfers(self._transfers)
        for account in recomputed.keys() | self._balances.keys():
            kept = self.balance(account)
            again = recomputed.get(account, ZERO_BALANCE)
            if kept != again:
                raise LedgerInvariantBroken(f"{account}: kept {kept}, transfers say {again}")
