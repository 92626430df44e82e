"""Repositories: load and save aggregates; they never commit."""
