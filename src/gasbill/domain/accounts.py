"""Accounts and meters: the rules that do not need a database."""

from __future__ import annotations

import enum
import re

from gasbill.domain.errors import GasbillError
from gasbill.domain.money import Volume

COMM_NO = re.compile(r"[0-9]{10}|[0-9]{14}")  # 14 digits for IoT meters, 10 for wireless ones
COMPANY_NO = re.compile(r"[0-9]{4}")  # ASCII: Python's \d takes any script's digits


class AccountError(GasbillError, ValueError):
    """An account or meter request that breaks a rule."""


class BillingMode(enum.StrEnum):
    METER = "meter"  # 表端计费: the meter holds the balance and deducts
    SYSTEM = "system"  # 平台计费: the ledger holds the balance; the meter only measures


def check_comm_no(comm_no: str) -> str:
    if not isinstance(comm_no, str) or not COMM_NO.fullmatch(comm_no):
        raise AccountError(
            f"meter communication number {comm_no!r} must be 14 digits (IoT) or 10 (wireless)"
        )
    return comm_no


def check_company_no(company_no: str) -> str:
    if not isinstance(company_no, str) or not COMPANY_NO.fullmatch(company_no):
        raise AccountError(f"company number {company_no!r} must be 4 digits")
    return company_no


def check_replacement(
    *, old_final_litres: int, last_billed_litres: int | None, new_opening_litres: int
) -> None:
    """A replacement's final reading cannot undo what was already billed."""
    if new_opening_litres < 0 or old_final_litres < 0:
        raise AccountError("registers cannot be negative")
    if last_billed_litres is not None and old_final_litres < last_billed_litres:
        raise AccountError(
            f"the old meter's final reading ({Volume.of_litres(old_final_litres).fixed()} m³) "
            f"is below the meter's last reading ({Volume.of_litres(last_billed_litres).fixed()} m³)"
        )
