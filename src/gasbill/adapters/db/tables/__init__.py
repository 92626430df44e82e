"""Every table, imported so that SQLModel.metadata knows them all."""

from gasbill.adapters.db.tables.accounts import Account, Customer, Meter, MeterBinding
from gasbill.adapters.db.tables.billing import BillingException, ChargeDay
from gasbill.adapters.db.tables.campaigns import Campaign, CampaignMeter, TrueUpDay, TrueUpMark
from gasbill.adapters.db.tables.commands import Command, CommandReport, MeterPrepayState
from gasbill.adapters.db.tables.decisions import BalanceWarning, DecisionState
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
from gasbill.adapters.db.tables.staff import (
    ApiToken,
    AuditEntry,
    LoginAttempt,
    LoginLimit,
    StaffUser,
)

__all__ = [
    "Account",
    "ApiToken",
    "AuditEntry",
    "BalanceWarning",
    "BillingException",
    "BillingInbox",
    "Campaign",
    "CampaignMeter",
    "ChargeDay",
    "Command",
    "CommandReport",
    "Customer",
    "DecisionState",
    "DeviceAlarm",
    "DeviceEvent",
    "IdempotencyRecord",
    "LedgerAccount",
    "LoginAttempt",
    "LoginLimit",
    "Meter",
    "MeterBinding",
    "MeterLatest",
    "MeterPrepayState",
    "MeterReading",
    "PollMark",
    "PushConflict",
    "StaffUser",
    "TransferRow",
    "TrueUpDay",
    "TrueUpMark",
]
