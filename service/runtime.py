"""What the server holds for its lifetime, as one value on ``app.state.govern``."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from govern.engine.catalog import BuiltinCatalog
from govern.engine.requests import StoreUnavailable

from .sessions import SessionStore
from .signin import SignIn
from .throttle import SignInThrottle
from .workflow import Workflow


@dataclass(frozen=True)
class Runtime:
    workflow: Workflow
    signin: SignIn
    dev: bool
    catalog: BuiltinCatalog  # what `govern catalog publish` wrote, in the store's database
    sessions: SessionStore  # who is signed in (service.sessions), in the same database
    throttle: SignInThrottle  # failed sign-ins (service.throttle), in the same database


def get_runtime(request: Request) -> Runtime:
    """The running server's workflow and sign-in (a FastAPI dependency)."""
    runtime = getattr(request.app.state, "govern", None)
    if not isinstance(runtime, Runtime):
        raise StoreUnavailable("the server is not ready")
    return runtime
