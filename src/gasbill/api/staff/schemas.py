"""What the staff API reads and writes: request bodies refuse unknown fields.

Every text field of a request refuses NUL (`Text`, and `Body` checks any
string it is given), integers are bounded to their columns, date-times and
days to years a utility meets (`Instant`, `CalendarDay`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from gasbill.adapters.platform.push_models import no_nul
from gasbill.api.edge import NO_NUL, CalendarDay, Instant, Text
from gasbill.domain.accounts import BillingMode
from gasbill.domain.ledger import MAX_BALANCE, Transfer
from gasbill.domain.money import Money

MAX_ID = 2**31 - 1  # ids are 32-bit keys
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
# how far a list may be paged: bounded so no integer reaches past its column
MAX_OFFSET = 2**31 - 1
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


def _whole(value: Any) -> Any:
    """JSON's 3185.0 is the integer 3185 (as JSON Schema and OpenAPI 3.1 count it); 3185.5
    stays refused. Up to 2^53 a float holds every whole number exactly, and every amount
    past that is refused by the money bounds anyway."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    return value


# Amounts are whole fen (0.01 yuan) as JSON integers; never a fraction of a fen. Bounded by
# the ledger's own bound (±10^15 fen), so OpenAPI shows the bound the domain keeps, as an
# exact integer (2^63 printed as a float 9.223372036854776e+18 in the document).
Fen = Annotated[StrictInt, Field(ge=-MAX_BALANCE, le=MAX_BALANCE), BeforeValidator(_whole)]
# (the bounds before the validator, or OpenAPI shows them as unknown keywords)
PositiveFen = Annotated[StrictInt, Field(gt=0, le=MAX_BALANCE), BeforeValidator(_whole)]
NonPositiveFen = Annotated[StrictInt, Field(ge=-MAX_BALANCE, le=0), BeforeValidator(_whole)]
NonNegativeFen = Annotated[StrictInt, Field(ge=0, le=MAX_BALANCE), BeforeValidator(_whole)]
# Registers are m³ as decimal strings with at most 3 decimals: exact, never a float.
Register = Annotated[str, Field(pattern=r"^\d{1,12}(\.\d{1,3})?$", examples=["12.500"])]
TariffId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
Channel = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$", examples=["cash", "wechat"])
]
# something besides white space, and never a NUL (a bare \S would let a lone NUL through)
Reason = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00]*[^\s\x00][^\x00]*$")]
Role = Literal["clerk", "auditor", "admin"]
# A password is taken as typed: `Body` strips white space from text, never from a secret
# (" pa ss " and "pa ss" are different passwords).
Password = Annotated[str, StringConstraints(strip_whitespace=False)]
# the domain's rules (domain.accounts), as OpenAPI shows them
COMPANY_NO_FORM = r"^[0-9]{4}$"
COMM_NO_FORM = r"^([0-9]{10}|[0-9]{14})$"


def _strings_without_nul(schema: dict[str, Any]) -> None:
    """Every string property OpenAPI shows refuses NUL, as `_no_nul_anywhere` does."""
    for field in schema.get("properties", {}).values():
        for option in field.get("anyOf", [field]):
            if option.get("type") == "string" and "pattern" not in option and "enum" not in option:
                option["pattern"] = NO_NUL


class Body(BaseModel):
    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_extra=_strings_without_nul
    )

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_anywhere(cls, value: Any) -> Any:
        """Any string of any request body, nested too: never a NUL (PostgreSQL refuses it)."""
        if isinstance(value, str):
            no_nul(value)
        elif isinstance(value, (list, tuple)):
            for item in value:
                cls._no_nul_anywhere(item)
        elif isinstance(value, dict):
            for k, v in value.items():
                cls._no_nul_anywhere(k)
                cls._no_nul_anywhere(v)
        return value


# -- customers and accounts -------------------------------------------------------


class CustomerIn(Body):
    name: Text = Field(min_length=1, max_length=100)
    phone: Text = Field(default="", max_length=30)
    address: Text = Field(default="", max_length=300)


class CustomerOut(BaseModel):
    id: int
    name: str
    phone: str
    address: str
    created_at: datetime


class AccountIn(Body):
    customer_id: Id
    number: Text = Field(min_length=1, max_length=30)
    company_no: str = Field(pattern=COMPANY_NO_FORM, examples=["1001"])
    billing_mode: BillingMode
    tariff_id: TariffId
    opened_on: CalendarDay
    meter_comm_no: str = Field(pattern=COMM_NO_FORM, examples=["12345678901234"])
    opening_register: Register = "0"
    bound_at: Instant | None = Field(
        default=None, description="When the meter was bound; default: opened_on's local midnight."
    )
    persons: int = Field(default=1, ge=1, le=99)
    warning_fen: Fen = 2000
    cutoff_fen: NonPositiveFen = 0
    reopen_fen: Fen = 0
    initial_fen: NonNegativeFen = Field(
        default=0,
        description="The first payment, taken with the opening; on a meter-mode account it "
        "goes to the meter with the `openaccount` (the opening is sent in either case).",
    )
    channel: Channel = "counter"


CLOSE_INSTEAD = (
    "the status is not changed by an update: close the account with "
    "POST /api/v1/accounts/{account_id}/closure (final reading, credit paid back, valve "
    "closed); a closed account is not reopened"
)


class AccountUpdate(Body):
    """An active account's household size, thresholds or tariff.

    Not its status: an account is closed by its closure, which settles it, and is
    not reopened. A body naming `status` is refused (422) with where to go instead;
    the field is not in the schema.
    """

    persons: int | None = Field(default=None, ge=1, le=99)
    warning_fen: Fen | None = None
    cutoff_fen: NonPositiveFen | None = None
    reopen_fen: Fen | None = None
    tariff_id: TariffId | None = None
    status: SkipJsonSchema[object] = None  # only to say why it is refused, and where to go

    @field_validator("status", mode="before")
    @classmethod
    def _closed_only_by_closing(cls, value: object) -> object:
        raise PydanticCustomError("not_adjustable", CLOSE_INSTEAD)


class ReplacementIn(Body):
    at: Instant
    old_final_register: Register
    new_comm_no: str = Field(pattern=COMM_NO_FORM)
    new_opening_register: Register = "0"
    reason: Text = Field(default="meter replaced", min_length=1, max_length=200)


class MeterOut(BaseModel):
    company_no: str
    comm_no: str
    bound_at: datetime
    opening_register: str  # m³
    unbound_at: datetime | None = None
    final_register: str | None = None
    reason: str = ""


class ReplacementOut(MeterOut):
    """The new meter's binding; in meter mode, how the old meter was settled."""

    billing_mode: str = "system"
    old_final_register: str | None = None  # m³
    ledger_credit: str | None = None  # yuan moved from meter_credit to prepaid, then to the meter
    meter_remain: str | None = None  # yuan: the old meter's last reported balance
    difference: str | None = None  # yuan: meter_remain − ledger_credit
    opening_command_id: int | None = None  # the new meter's openaccount


class AccountOut(BaseModel):
    id: int
    number: str
    customer_id: int
    company_no: str
    billing_mode: str
    tariff_id: str
    persons: int
    opened_on: date
    warning_fen: int
    cutoff_fen: int
    reopen_fen: int
    status: str
    created_at: datetime
    meter: MeterOut | None = None
    opening: list[dict[str, Any]] | None = None  # the meter's opening, where it stands


class ClosureIn(Body):
    final_register: Register | None = Field(
        default=None,
        description=(
            "Read off the meter; default: its latest frozen reading since it was bound to "
            "the account, on the tariff's volume basis."
        ),
    )
    channel: Channel = "cash"


class ClosureOut(BaseModel):
    account_id: int
    final_register: str | None
    billed_fen: int = Field(description="Billed up to the final register in the closing.")
    netted_fen: int = Field(
        default=0,
        description=(
            "Moved between prepaid and meter_credit before the refunds: what one held paid "
            "what the other owed (meter mode)."
        ),
    )
    netting: str | None = Field(default=None, description="The netting transfer's id.")
    refunded_fen: int
    refunds: list[str]
    owed_fen: int = Field(
        default=0,
        description="What the account still owes after the closing (a payment settles it).",
    )
    valve_command_id: int | None


class ReadingOut(BaseModel):
    meter_comm_no: str
    acquisition_time: datetime
    data_type: int
    std_sum: str | None
    work_sum: str | None
    remain_money: str | None
    curr_price: str | None
    meter_state: int | None


class BalanceOut(BaseModel):
    posted_fen: int
    pending_fen: int
    available_fen: int
    available: str  # yuan


class BalancesOut(BaseModel):
    account_id: int
    balances: dict[str, BalanceOut]


# -- money ------------------------------------------------------------------------


class PaymentIn(Body):
    amount_fen: PositiveFen
    channel: Channel
    memo: Text = Field(default="", max_length=200)


class RefundIn(Body):
    amount_fen: PositiveFen
    channel: Channel
    reason: Reason


class AdjustmentIn(Body):
    amount_fen: Annotated[
        Fen,
        Field(
            description="Signed, never 0: + credits the target, − debits it.",
            json_schema_extra={"not": {"const": 0}},
        ),
    ]
    target: Literal["prepaid", "meter_credit"]
    reason: Reason

    @field_validator("amount_fen")
    @classmethod
    def _moves_something(cls, value: int) -> int:
        if value == 0:
            raise ValueError("an adjustment moves a non-zero amount")
        return value


class ReversalIn(Body):
    reason: Reason


class TransferOut(BaseModel):
    id: str
    kind: str
    status: str
    amount_fen: int
    amount: str  # yuan
    debit_account: str
    credit_account: str
    effective_at: datetime
    recorded_at: datetime
    reason: str
    actor: str
    pending_id: str | None
    reverses: str | None

    @classmethod
    def of(cls, transfer: Transfer) -> TransferOut:
        return cls(
            id=transfer.id,
            kind=str(transfer.kind),
            status=str(transfer.status),
            amount_fen=transfer.amount,
            amount=Money.of_fen(transfer.amount).fixed(),
            debit_account=str(transfer.debit_account),
            credit_account=str(transfer.credit_account),
            effective_at=transfer.effective_at,
            recorded_at=transfer.recorded_at,
            reason=transfer.reason,
            actor=transfer.actor,
            pending_id=transfer.pending_id,
            reverses=transfer.reverses,
        )


# -- the rest ---------------------------------------------------------------------


class ConflictOut(BaseModel):
    """A corrected re-push: the stored values beside the re-pushed ones (decimals in
    thousandths, as stored), how often it came, and what was decided."""

    status: Literal["open", "accepted", "dismissed"]
    record: str  # reading | alarm | event
    data_type: int | None
    stored: dict[str, Any]
    corrected: dict[str, Any]
    times_seen: int
    first_seen_at: datetime
    last_seen_at: datetime | None
    accept: str  # the route of each action (accept: auditor, admin; dismiss: any staff)
    dismiss: str


class ConflictDecisionIn(Body):
    reason: Reason


class ExceptionOut(BaseModel):
    """A billing exception, or (kind `push_conflict`, id the conflict's) a corrected re-push
    waiting for review, with its `conflict` details and actions."""

    id: int
    kind: str
    status: str
    account_id: int | None
    company_no: str
    meter_comm_no: str
    reading_at: datetime | None
    detail: str
    resolution: str
    resolved_by: str | None
    resolved_at: datetime | None
    created_at: datetime
    conflict: ConflictOut | None = None


class ResolutionIn(Body):
    resolution: Text = Field(min_length=1, max_length=1000, pattern=r"^[^\x00]*\S[^\x00]*$")


class AuditOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    before: Any
    after: Any
    prev_hash: str
    hash: str


class ChainBreakOut(BaseModel):
    seq: int | None
    problem: str


class AuditVerifyOut(BaseModel):
    ok: bool
    entries: int
    breaks: list[ChainBreakOut]


class PaymentOut(TransferOut):
    """The payment; `top_up_id` names the remote top-up it became (meter mode)."""

    top_up_id: int | None = None

    @classmethod
    def of(cls, transfer: Transfer, *, top_up_id: int | None = None) -> PaymentOut:
        return cls(**TransferOut.of(transfer).model_dump(), top_up_id=top_up_id)
