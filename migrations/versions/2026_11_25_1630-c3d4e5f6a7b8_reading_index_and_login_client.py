"""meter_reading's indexes fit its queries; meter_latest updates in place; login attempts by client

Revision ID: c3d4e5f6a7b8
Revises: b7c1e2a9d4f0
Create Date: 2026-11-25 16:30:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c3d4e5f6a7b8"
down_revision: str | None = "b7c1e2a9d4f0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # same columns in the same order as pk_meter_reading: every insert paid for it twice
    op.drop_index("ix_meter_reading_meter_type_time", table_name="meter_reading")
    # no query reads readings by receive time; history reads a company's by acquisition time
    op.drop_index("ix_meter_reading_receive_time", table_name="meter_reading")
    op.create_index(
        "ix_meter_reading_company_time", "meter_reading", ["company_no", "acquisition_time"]
    )
    if op.get_bind().dialect.name == "postgresql":
        # every reading moves its meter's row: leave room on each page for the new version,
        # so the update stays on the page and its indexes are not touched (HOT)
        op.execute("ALTER TABLE meter_latest SET (fillfactor = 70)")
    # the login limit counts failures per client address too
    op.create_index("ix_login_attempt_client_at", "login_attempt", ["client", "at"])


def downgrade() -> None:
    op.drop_index("ix_login_attempt_client_at", table_name="login_attempt")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE meter_latest RESET (fillfactor)")
    op.drop_index("ix_meter_reading_company_time", table_name="meter_reading")
    op.create_index("ix_meter_reading_receive_time", "meter_reading", ["receive_time"])
    op.create_index(
        "ix_meter_reading_meter_type_time",
        "meter_reading",
        ["company_no", "meter_comm_no", "data_type", "acquisition_time"],
    )
