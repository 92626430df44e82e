"""The role of every route: each answers no token, and each role, as the policy table says."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from gasbill.api.policy import (
    POLICY,
    UI,
    PolicyMismatch,
    check_covers,
    flat_routes,
    route_keys,
)
from tests.e2e.staff_helpers import (
    API,
    add_exception,
    auth,
    key,
    make_target_user,
    open_account,
)

pytestmark = pytest.mark.db


def test_every_route_is_in_the_policy_table(app):
    keys = route_keys(app.routes)
    assert keys, "no routes found"
    assert keys == set(POLICY), "routes and policy table differ: see gasbill/api/policy.py"


def test_a_route_missing_from_the_policy_table_is_refused():
    app = FastAPI()

    @app.get(f"{API}/secret-things")
    def secret_things() -> dict[str, str]:
        return {}

    with pytest.raises(PolicyMismatch, match="secret-things"):
        check_covers(app.routes)


@pytest.fixture
def walk_params(client, clerk, engine, passwords):
    """A real id for every path parameter, so allowed calls get past the role check."""
    account = open_account(client, clerk)
    paid = client.post(
        f"{API}/accounts/{account['id']}/payments",
        json={"amount_fen": 100, "channel": "cash"},
        headers={**clerk, **key()},
    ).json()
    target = make_target_user(engine, passwords)
    return {
        "account_id": account["id"],
        "customer_id": account["customer_id"],
        "transfer_id": paid["id"],
        "user_id": target,
        "exception_id": add_exception(engine, account["id"]),
        "tariff_id": "beijing-residential",
        "command_id": 1,  # none exists: an allowed role gets past the check to a 404
        "campaign_id": 1,  # none exists either
        "conflict_id": 1,  # none exists either
    }


def test_every_route_answers_every_role_as_the_policy_table_says(client, app, walk_params):
    tokens = {role: auth(client, role) for role in ("clerk", "auditor", "admin")}
    routes = sorted(
        # the staff pages (/ui) answer with redirects and CSRF: tests/e2e/test_web_pages.py
        (
            key
            for key in route_keys(app.routes)
            if not POLICY[key].external and not key[1].startswith(UI)
        ),
        key=lambda k: k == ("POST", f"{API}/auth/logout"),  # logging out ends the token: last
    )
    checked = 0
    for method, template in routes:
        access = POLICY[(method, template)]
        path = template.format(**walk_params)
        body = {} if method in ("POST", "PUT", "PATCH") else None
        for role in (None, "clerk", "auditor", "admin"):
            headers = {**key(), **(tokens[role] if role else {})}
            status = client.request(method, path, json=body, headers=headers).status_code
            where = f"{method} {template} as {role or 'nobody'}: {status}"
            if access.public:
                assert status not in (401, 403), where
            elif role is None:
                assert status == 401, where
            elif access.allows(role):
                assert status not in (401, 403), where
            else:
                assert status == 403, where
            checked += 1
    assert checked == 4 * len(routes)


def test_the_walk_sees_every_route_with_its_full_path(app):
    paths = {getattr(r, "path", "") for r in flat_routes(app.routes)}
    assert f"{API}/accounts/{{account_id}}/payments" in paths
