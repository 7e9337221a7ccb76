"""Who may do what to an access request: asked of the ``govern.requests`` policy in OPA
(policies/requests/requests.rego), over the ``data.mesh`` and ``data.directory`` the engine
uploaded. The policy decides; this module only asks and translates a refusal into
:class:`NotAllowed` with the policy's reasons.
"""

from __future__ import annotations

from typing import Any, Iterable

from govern.engine.errors import PolicyError
from govern.engine.opa import OPAClient
from govern.engine.requests import NotAllowed

ALLOW = "govern/requests/allow"
REASONS = "govern/requests/reasons"
APPROVABLE = "govern/requests/approvable"


class Authorizer:
    def __init__(self, client: OPAClient):
        self.client = client

    def check(self, action: str, actor: str, request: dict[str, Any]) -> None:
        """Return when the policy allows; raise NotAllowed (with its reasons) otherwise."""
        query = {"action": action, "actor": actor, "request": request}
        allowed = self.client.decide(ALLOW, query).result
        if allowed is True:
            return
        if allowed is not False:
            raise PolicyError(f"data.govern.requests.allow must be true or false, got "
                              f"{allowed!r}")
        reasons = self.client.decide(REASONS, query).result
        if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
            raise PolicyError("data.govern.requests.reasons must be a set of strings")
        ref = request.get("product", "?")
        raise NotAllowed("; ".join(sorted(reasons)) or f"{actor} may not {action} a request "
                         f"for {ref}")

    def approvable(self, actor: str, requests: Iterable[dict[str, Any]]) -> set[str]:
        """The ids among ``requests`` that the actor may approve, in one decision."""
        result = self.client.decide(APPROVABLE, {"actor": actor,
                                                 "requests": list(requests)}).result
        if not isinstance(result, list):
            raise PolicyError("data.govern.requests.approvable must be a set of ids")
        return {str(i) for i in result}
