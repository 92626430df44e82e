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
same rules as the in-memory `Ledger`.

    accounts      AccountKind, AccountCode
    transfers     Transfer, TransferGroup, kinds and statuses
    resolutions   resolve_hold, reverse
    balances      Balance and what a transfer changes
    rules         LedgerView, check_transfer, check_group
    verification  verify_transfers, LedgerReport
    memory        Ledger, the in-memory ledger
"""

from __future__ import annotations

from gasbill.domain.ledger.accounts import (
    CUSTOMER_KINDS,
    AccountCode,
    AccountKind,
)
from gasbill.domain.ledger.balances import (
    ZERO_BALANCE,
    Balance,
    balance_changes,
    balance_from_transfers,
    balances_from_transfers,
    check_bounded,
)
from gasbill.domain.ledger.memory import (
    Ledger,
)
from gasbill.domain.ledger.resolutions import (
    check_reversible,
    fits_hold,
    resolve_hold,
    reverse,
)
from gasbill.domain.ledger.rules import (
    LedgerView,
    StagedView,
    check_group,
    check_transfer,
)
from gasbill.domain.ledger.transfers import (
    MAX_AMOUNT,
    MAX_BALANCE,
    RESOLUTIONS,
    HoldAction,
    Transfer,
    TransferGroup,
    TransferKind,
    TransferStatus,
    check_amount,
    new_transfer_id,
)
from gasbill.domain.ledger.verification import (
    LedgerReport,
    compare_balances,
    total_problems,
    verify_transfers,
)

__all__ = [
    "CUSTOMER_KINDS",
    "MAX_AMOUNT",
    "MAX_BALANCE",
    "RESOLUTIONS",
    "ZERO_BALANCE",
    "AccountCode",
    "AccountKind",
    "Balance",
    "HoldAction",
    "Ledger",
    "LedgerReport",
    "LedgerView",
    "StagedView",
    "Transfer",
    "TransferGroup",
    "TransferKind",
    "TransferStatus",
    "balance_changes",
    "balance_from_transfers",
    "balances_from_transfers",
    "check_amount",
    "check_bounded",
    "check_group",
    "check_reversible",
    "check_transfer",
    "compare_balances",
    "fits_hold",
    "new_transfer_id",
    "resolve_hold",
    "reverse",
    "total_problems",
    "verify_transfers",
]
