"""`IdIn` and `TextIn`: a list as one parameter, the same rows as a plain IN list."""

from __future__ import annotations

import sqlalchemy as sa

from gasbill.adapters.db.id_lists import IdIn, TextIn

ROWS = sa.Table(
    "id_list_rows",
    sa.MetaData(),
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
)
NAMES = ["00000000000001", "ab'c", '"quoted"', "燃气表", "", "x" * 300]


def _ids(conn: sa.Connection, condition: sa.ColumnElement[bool]) -> list[int]:
    return list(conn.execute(sa.select(ROWS.c.id).where(condition).order_by(ROWS.c.id)).scalars())


def test_a_list_as_one_parameter_finds_what_an_in_list_finds(engine):
    ROWS.create(engine)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.insert(ROWS), [{"id": 2**40 + i, "name": n} for i, n in enumerate(NAMES)]
            )
            big = [2**40 + 1, 2**40 + 3, 2**40 + 3, 7]
            assert _ids(conn, IdIn(ROWS.c.id, big)) == _ids(conn, ROWS.c.id.in_(big))
            assert _ids(conn, IdIn(ROWS.c.id, big)) == [2**40 + 1, 2**40 + 3]
            assert _ids(conn, IdIn(ROWS.c.id, [])) == []
            wanted = ["ab'c", "燃气表", "", "not there", "燃气表"]
            assert _ids(conn, TextIn(ROWS.c.name, wanted)) == _ids(conn, ROWS.c.name.in_(wanted))
            assert _ids(conn, TextIn(ROWS.c.name, wanted)) == [2**40 + 1, 2**40 + 3, 2**40 + 4]
            assert _ids(conn, TextIn(ROWS.c.name, NAMES)) == [2**40 + i for i in range(6)]
            assert _ids(conn, TextIn(ROWS.c.name, [])) == []
    finally:
        ROWS.drop(engine)
