"""`govern serve`: the REST API and the owners' web page for access requests."""

from __future__ import annotations

import click

from govern.engine.errors import GovernError
from govern.engine.mesh import load_config

from .common import handle_errors, mesh_root
from .render import warn


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on; "
              "with --dev only a loopback address (127.0.0.0/8, ::1, localhost).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--dev", is_flag=True, help="Development mode (file directory only, this machine "
              "only): sign in as any directory user without a password; every page says so.")
@click.option("--insecure-dev", is_flag=True, help="Session cookie without the Secure flag, "
              "for plain-HTTP testing on this machine.")
@click.pass_context
@handle_errors
def serve(ctx: click.Context, host: str, port: int, dev: bool, insecure_dev: bool) -> None:
    """Serve the access-request API (/api, OpenAPI at /openapi.json) and the web page where
    owners sign in (LDAP bind) and approve or deny requests.

    Put it behind a TLS-terminating proxy: the session cookie is Secure. Sessions are kept
    in the request store for 8 hours, bound to the sign-in mode (a --dev session is none
    without --dev); signing out ends one for every copy of its cookie. The cookie is signed
    with $GOVERN_SESSION_SECRET (random per process when unset). Failed sign-ins (the form
    and HTTP Basic) are throttled: after 5 for one user, or 20 from one address, within 15
    minutes, further attempts get 429 with Retry-After without asking the directory. The
    mesh, the directory and the policies are read at start: restart to pick up changes.
    Run it under a supervisor: if its OPA exits, the server stops (exit 1, one line) rather
    than answer 503 forever.

    --dev signs anyone in as anyone, so it listens only on a loopback address: any other
    --host (0.0.0.0, ::, a LAN address, a name resolving elsewhere) is refused, exit 1.

    \b
    Examples:
      govern serve                              # LDAP sign-in, https behind a proxy
      govern serve --dev --insecure-dev         # local try-out with the file directory
    """
    import uvicorn

    from govern.service.app import create_app, open_runtime
    from govern.service.loopback import loopback_only
    from govern.service.signin import check_mode

    if dev:
        host = loopback_only(host)  # before anything starts: refused in one line
    root = mesh_root(ctx)
    check_mode(load_config(root).directory, dev)  # a wrong mode fails here, in one line
    if dev:
        warn("development mode: anyone on this machine signs in as anyone, without a password")
    if insecure_dev:
        warn("--insecure-dev: the session cookie is sent over plain HTTP")
    died: list[int] = []
    servers: list[uvicorn.Server] = []

    def opa_exited(status: int) -> None:
        # serving without OPA would answer 503 forever: stop (uvicorn's graceful shutdown),
        # and let the supervisor (systemd, Kubernetes) start a server with a fresh OPA
        died.append(status)
        for server in servers:
            server.should_exit = True

    # opened here, not in the app's startup: a store, directory or OPA failure is one line
    with open_runtime(root, dev=dev, on_opa_exit=opa_exited) as runtime:
        app = create_app(root, dev=dev, insecure_dev=insecure_dev, runtime=runtime)
        shown = f"[{host}]" if ":" in host else host
        click.echo(f"Serving on http://{shown}:{port}/ (API under /api, OpenAPI at "
                   "/openapi.json)", err=True)
        servers.append(uvicorn.Server(uvicorn.Config(
            app, host=host, port=port, log_level="info", server_header=False,
            proxy_headers=False)))
        if not died:  # OPA may have gone already, while the app was being made
            servers[0].run()
    if died:
        raise GovernError(f"OPA exited (status {died[0]}) under govern serve; the server "
                          "stopped so that its supervisor can start it again")
