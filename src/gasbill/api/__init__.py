"""The HTTP edge: the staff API under /api/v1 (and, later, the platform-facing endpoints)."""
