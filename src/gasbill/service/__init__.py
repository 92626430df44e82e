"""Use cases: each opens its unit of work, calls the domain, and commits."""
