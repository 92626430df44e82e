"""Every table, imported so that SQLModel.metadata knows them all."""

from gasbill.adapters.db.tables.accounts import Account, Customer, Meter, MeterBinding
from gasbill.adapters.db.tables.billing import BillingException, BillingState, ChargeDay
from gasbill.adapters.db.tables.ledger import IdempotencyRecord, LedgerAccount, TransferRow
from gasbill.adapters.db.tables.readings import MeterReading
from gasbill.adapters.db.tables.staff import ApiToken, AuditEntry, LoginAttempt, StaffUser

__all__ = [
    "Account",
    "ApiToken",
    "AuditEntry",
    "BillingException",
    "BillingState",
    "ChargeDay",
    "Customer",
    "IdempotencyRecord",
    "LedgerAccount",
    "LoginAttempt",
    "Meter",
    "MeterBinding",
    "MeterReading",
    "StaffUser",
    "TransferRow",
]
