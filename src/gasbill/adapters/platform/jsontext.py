"""Exact JSON for the platform's wire: `gasbill.jsontext`, under its old name here."""

from gasbill.jsontext import decimal_text, dumps_exact, loads_exact

__all__ = ["decimal_text", "dumps_exact", "loads_exact"]
