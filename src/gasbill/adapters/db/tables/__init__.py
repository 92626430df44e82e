"""Every table, imported so that SQLModel.metadata knows them all."""

from gasbill.adapters.db.tables.accounts import Account, Customer, Meter, MeterBinding
from gasbill.adapters.db.tables.billing import BillingException, ChargeDay
from gasbill.adapters.db.tables.commands import Command, CommandReport, MeterPrepayState
from gasbill.adapters.db.tables.ledger import IdempotencyRecord, LedgerAccount, TransferRow
from gasbill.adapters.db.tables.readings import (
    BillingInbox,
    DeviceAlarm,
    DeviceEvent,
    MeterLatest,
    MeterReading,
    PollMark,
    PushConflict,
)
from gasbill.adapters.db.tables.staff import ApiToken, AuditEntry, LoginAttempt, StaffUser

__all__ = [
    "Account",
    "ApiToken",
    "AuditEntry",
    "BillingException",
    "BillingInbox",
    "ChargeDay",
    "Command",
    "CommandReport",
    "Customer",
    "DeviceAlarm",
    "DeviceEvent",
    "IdempotencyRecord",
    "LedgerAccount",
    "LoginAttempt",
    "Meter",
    "MeterBinding",
    "MeterLatest",
    "MeterPrepayState",
    "MeterReading",
    "PollMark",
    "PushConflict",
    "StaffUser",
    "TransferRow",
]
