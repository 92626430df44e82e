"""The ledger in the database: ledger accounts and transfers (DESIGN §6)."""

from __future__ import annotations

from sqlmodel import Session, select

from gasbill.adapters.db.tables.ledger import LedgerAccount
from gasbill.domain.ledger import CUSTOMER_KINDS, AccountCode


class SqlLedger:
    def __init__(self, session: Session) -> None:
        self.session = session

    def ensure_account(
        self, code: AccountCode, *, account_id: int | None = None, allowance: int | None = None
    ) -> LedgerAccount:
        """The ledger account for `code`, created on first use.

        Customer accounts keep running balances (only their own postings lock
        them); global ones derive theirs from transfers.
        """
        row = self.session.exec(
            select(LedgerAccount).where(LedgerAccount.code == str(code))
        ).first()
        if row is None:
            row = LedgerAccount(
                code=str(code),
                kind=str(code.kind),
                account_id=account_id,
                keeps_balance=code.kind in CUSTOMER_KINDS,
                overdraft_allowance_fen=allowance,
            )
            self.session.add(row)
            self.session.flush()
        return row
