"""The staff pages: the counter (clerk), the audit office (auditor) and administration (admin).

Server-rendered with Jinja2 under /ui, in Chinese (default) or English, with
htmx (shipped in `static/`) for the parts that update in place. Every page
is listed in the API's policy table and checked by the same `Access` rules;
every change goes through the same use cases as the API and the CLI.
"""

from __future__ import annotations

from gasbill.web.app import install_web

__all__ = ["install_web"]
