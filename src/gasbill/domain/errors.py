"""The one exception hierarchy of the domain.

Adapters map these to their own edges (the platform envelope, the staff API's
error shape, the CLI's exit status); nothing below them knows about HTTP.
"""


class GasbillError(Exception):
    """Base of every error the domain raises on purpose."""


class InvalidAmount(GasbillError, ValueError):
    """A money, volume or price value that cannot be represented exactly."""


class UnitMismatch(GasbillError, TypeError):
    """Two quantities of different units were combined."""


class TariffError(GasbillError, ValueError):
    """A tariff definition breaks a rule; the message names where and which."""


class TariffNotEncodable(TariffError):
    """A tariff that a self-billing meter cannot hold (spec §5.4 ladder_price)."""


class NoVersionInForce(TariffError):
    """Rating asked for a time before the tariff's first version."""


class LedgerError(GasbillError):
    """A ledger rule was broken."""


class HoldAlreadyResolved(LedgerError):
    """A pending transfer was posted or voided a second time."""


class IdempotencyConflict(LedgerError):
    """The same idempotency key came with a different request."""


class InvalidTransfer(LedgerError, ValueError):
    """A transfer that is malformed in itself: amount, accounts, key, times, links."""


class InvalidAccountCode(InvalidTransfer):
    """A ledger account code that does not parse or is not one we keep."""


class AmountOutOfRange(InvalidTransfer):
    """An amount above what one operation may move, or a balance pushed past its bound."""


class UnknownTransfer(LedgerError, LookupError):
    """A transfer refers to a hold or an original that is not in the ledger."""


class DuplicateTransferId(LedgerError):
    """A new request reuses the id of a transfer already recorded."""


class InvalidResolution(LedgerError):
    """A post or void that does not fit its hold (not a hold, other accounts, too much)."""


class ReversalRefused(LedgerError):
    """A transfer that cannot be reversed, or a reversal that does not mirror it."""


class AlreadyReversed(ReversalRefused):
    """A transfer was reversed a second time."""


class OverdraftRefused(LedgerError):
    """A debit would take an account's available balance below its allowance."""


class LedgerInvariantBroken(LedgerError):
    """`verify()` found balances that do not add up: a bug, never a user error."""


class UnknownLedgerAccount(LedgerError, LookupError):
    """A transfer names a customer's ledger account that was never opened."""
