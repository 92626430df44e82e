"""Money, volume and price are stored as 64-bit integers on every database (DESIGN §2)."""

import sqlalchemy as sa

from gasbill.domain.money import Money


def test_a_64_bit_amount_survives_a_round_trip(database_url):
    url = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    table = sa.Table("width_probe", metadata, sa.Column("fen", sa.BigInteger, nullable=False))
    big = Money.of_fen(2**62 + 7)
    try:
        with engine.begin() as conn:
            metadata.drop_all(conn)
            metadata.create_all(conn)
            conn.execute(table.insert(), [{"fen": big.fen}, {"fen": -big.fen}])
            stored = conn.execute(sa.select(table.c.fen).order_by(table.c.fen)).scalars().all()
            total = conn.execute(sa.select(sa.func.sum(table.c.fen))).scalar_one()
        assert [Money.of_fen(int(v)) for v in stored] == [-big, big]
        assert int(total) == 0  # PostgreSQL's SUM(bigint) is numeric, SQLite's an int
    finally:
        with engine.begin() as conn:
            metadata.drop_all(conn)
        engine.dispose()
