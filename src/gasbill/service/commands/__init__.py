"""Commands to meters: queued (queue), sent (dispatch), followed (reports, results), shown.

A package, not a namespace directory: the import contracts (`.importlinter`)
and packaging only see modules under an `__init__.py`.
"""
