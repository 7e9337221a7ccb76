"""`govern request …`: the access-request workflow from the command line.

You are $GOVERN_USER (else the OS user), lower-cased, and must be a user of the directory.
Who may approve, deny or revoke is decided by the `govern.requests` policy in OPA.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import re
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

import click

from govern.engine import pipeline
from govern.engine.approvals import STATUS_WORDS
from govern.engine.mesh import load_config

from .common import handle_errors, mesh_root
from .render import emit_json

if TYPE_CHECKING:  # the store (SQLAlchemy) is imported only by the commands that use it
    from govern.engine.requests import Request
    from govern.service.workflow import Workflow

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")


def current_user() -> str:
    """$GOVERN_USER, else the OS user, lower-cased."""
    return (os.environ.get("GOVERN_USER") or getpass.getuser()).strip().lower()


@contextmanager
def open_workflow(ctx: click.Context) -> Iterator[Workflow]:
    """The store (migrated), the mesh, the directory and an OPA session, for one command."""
    from govern.engine.requests import RequestStore
    from govern.service.authz import Authorizer
    from govern.service.notify import make_notifier
    from govern.service.workflow import Workflow

    root = mesh_root(ctx)
    config = load_config(root)
    with RequestStore.for_config(config.requests, root, migrate=True) as store:
        inputs = pipeline.load_inputs(root)
        with pipeline.opa_session(inputs) as client:
            yield Workflow(store, inputs.mesh, inputs.snapshot, Authorizer(client),
                           make_notifier(config.requests.webhook),
                           max_days=config.requests.max_days)


def _plain(text: str | None, width: int | None = None) -> str:
    """Text safe for a terminal: no control characters, optionally cut to ``width``."""
    out = _UNPRINTABLE.sub(" ", text or "")
    if width is not None and len(out) > width:
        out = out[:width - 1] + "…"
    return out


def _state(r: Request, today: dt.date) -> str:
    return f"{r.status} (expired)" if r.status == "approved" and r.expired(today) else r.status


def _one_line(r: Request, today: dt.date) -> str:
    return (f"{r.id}  {_state(r, today)}: {r.requester} asks {r.access} on {r.product} port "
            f"{r.port} until {r.expires.isoformat()}")


FORMAT = click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")


@click.group()
def request() -> None:
    """Access requests: ask for access to a product port; its owner or a steward approves.

    \b
    Examples:
      govern request create clinical/trial_results --port results \\
          --purpose "Safety signal review" --until 2027-03-31 --accept-dsa
      govern request list --to-approve
      govern request approve req-1a2b3c4d --reason "Signed DSA on file"
      govern plan      # the approved request shows as a grant; apply grants it
    """


@request.command("create")
@click.argument("product", metavar="DOMAIN/NAME[/PORT]")
@click.option("--port", help="The port (optional when the product has one, or given in "
              "PRODUCT).")
@click.option("--access", type=click.Choice(["read", "write"]), default="read",
              show_default=True)
@click.option("--purpose", required=True, help="Why you need the access.")
@click.option("--until", "until", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="Last day of access (YYYY-MM-DD; after today, at most requests.max_days "
              "ahead).")
@click.option("--accept-dsa", is_flag=True, help="Accept the product's data sharing "
              "agreement without being asked.")
@FORMAT
@click.pass_context
@handle_errors
def create(ctx: click.Context, product: str, port: str | None, access: str, purpose: str,
           until: dt.datetime, accept_dsa: bool, fmt: str) -> None:
    """Ask for access to a product's port. Shows the product's data sharing agreement, which
    you accept with --accept-dsa (or by answering yes)."""
    from govern.engine.requests import InvalidRequest

    parts = product.split("/")
    if len(parts) == 3:
        if port and port != parts[2]:
            raise InvalidRequest(f"{product}: the port is given twice ({parts[2]}, {port})")
        product, port = "/".join(parts[:2]), parts[2]
    with open_workflow(ctx) as wf:
        actor = wf.identify(current_user())
        spec = wf.product(product)
        click.echo(f"Data sharing agreement of {spec.ref}:\n  {_plain(spec.sharing_agreement)}",
                   err=fmt == "json")
        if not accept_dsa:
            if not sys.stdin.isatty():
                raise InvalidRequest(f"accept the data sharing agreement of {spec.ref} with "
                                     "--accept-dsa (no terminal to ask on)")
            accept_dsa = click.confirm("Do you accept it?", default=False, err=True)
        created = wf.create(actor, spec.ref, port, access, purpose, until.date(), accept_dsa)
        today = wf.today()
    if fmt == "json":
        emit_json(created.to_dict())
        return
    approvers = ", ".join([spec.owner, *spec.stewards])
    click.echo(f"Created {_one_line(created, today)}.\nWaiting for approval by the owner or a "
               f"steward of {spec.ref}: {approvers}.")


@request.command("list")
@click.option("--mine", "scope", flag_value="mine", help="Only your requests.")
@click.option("--to-approve", "scope", flag_value="to_approve",
              help="Only pending requests you may approve.")
@click.option("--status", type=click.Choice(STATUS_WORDS))
@click.option("--product", "-p", metavar="DOMAIN/NAME")
@click.option("--limit", type=click.IntRange(1, 10000), default=200, show_default=True)
@FORMAT
@click.pass_context
@handle_errors
def list_cmd(ctx: click.Context, scope: str | None, status: str | None, product: str | None,
             limit: int, fmt: str) -> None:
    """Requests, newest first: all of them, yours (--mine), or those waiting for your
    decision (--to-approve)."""
    with open_workflow(ctx) as wf:
        found = wf.find(current_user(), mine=scope == "mine", to_approve=scope == "to_approve",
                        status=status, product=product, limit=limit)
        today = wf.today()
    if fmt == "json":
        emit_json([{**r.to_dict(), "expired": r.expired(today)} for r in found])
        return
    if not found:
        click.echo("No requests.")
        return
    rows = [(r.id, _state(r, today), r.requester, r.product, r.port, r.access,
             r.expires.isoformat(), _plain(r.purpose, 48)) for r in found]
    header = ("ID", "STATUS", "REQUESTER", "PRODUCT", "PORT", "ACCESS", "UNTIL", "PURPOSE")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())


@request.command("show")
@click.argument("request_id", metavar="ID")
@FORMAT
@click.pass_context
@handle_errors
def show(ctx: click.Context, request_id: str, fmt: str) -> None:
    """One request and its audit trail."""
    with open_workflow(ctx) as wf:
        wf.identify(current_user())
        item, events = wf.get(request_id)
        today = wf.today()
    if fmt == "json":
        emit_json({**item.to_dict(), "expired": item.expired(today),
                   "events": [e.to_dict() for e in events]})
        return
    click.echo(_one_line(item, today))
    click.echo(f"  purpose: {_plain(item.purpose)}")
    click.echo(f"  accepted: {_plain(item.sharing_agreement)}")
    for e in events:
        why = f": {_plain(e.reason)}" if e.reason else ""
        click.echo(f"  {e.at.strftime('%Y-%m-%d %H:%M:%S UTC')}  {e.who} {e.action}{why}")


def _decision(action: str, verb: str, done: str):
    @request.command(action, help=f"{verb} a request (with a reason, kept in the audit "
                     "trail). Who may is decided by the govern.requests policy; a requester "
                     "never approves or denies their own request.")
    @click.argument("request_id", metavar="ID")
    @click.option("--reason", required=True, help="Why (kept in the audit trail).")
    @FORMAT
    @click.pass_context
    @handle_errors
    def command(ctx: click.Context, request_id: str, reason: str, fmt: str) -> None:
        with open_workflow(ctx) as wf:
            decided = wf.decide(current_user(), request_id, action, reason)
            today = wf.today()
        if fmt == "json":
            emit_json(decided.to_dict())
        else:
            click.echo(f"{done} {_one_line(decided, today)}."
                       + ("\nThe next `govern apply` changes the grant."
                          if action != "deny" else ""))

    return command


approve = _decision("approve", "Approve", "Approved")
deny = _decision("deny", "Deny", "Denied")
revoke = _decision("revoke", "Revoke", "Revoked")


@request.command("migrate")
@click.pass_context
@handle_errors
def migrate(ctx: click.Context) -> None:
    """Create or upgrade the request store's schema (requests.url in govern.yaml)."""
    from govern.engine.requests import RequestStore

    root = mesh_root(ctx)
    config = load_config(root)
    with RequestStore.for_config(config.requests, root, migrate=True) as store:
        click.echo(f"Request store {store.label} is at schema {store.revision()}.")
