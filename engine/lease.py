"""A lease on a shared OPA server: one run at a time writes to it.

A run uploads its data to fixed paths (``data.directory``, ``data.approvals``,
``data.mesh``). Two runs against one server that govern did not start (``opa.url`` with
``opa.upload: true``) would overwrite each other's, and decide over a mix of both: a
``govern serve`` and a ``govern apply`` on one server, say. So before uploading, a run
creates ``data.govern_lease`` with a create-only write (``If-None-Match: *``: OPA answers
304 and changes nothing when it exists), and deletes it at the end of its session. A run
that finds the lease held stops, naming the holder.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from typing import Any, Iterator

from .errors import GovernError, OPAInUse
from .opa import OPAClient

LEASE_PATH = "govern_lease"


@dataclass(frozen=True)
class Lease:
    run: str
    host: str
    pid: int
    since: str

    @classmethod
    def new(cls) -> "Lease":
        since = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
        return cls(uuid.uuid4().hex[:12], socket.gethostname(), os.getpid(),
                   since.replace("+00:00", "Z"))


def take(client: OPAClient) -> Lease:
    """The lease on the server, or OPAInUse naming the run that holds it."""
    lease = Lease.new()
    for _ in range(3):  # a holder that ends between our write and our read: try again
        if client.create_data(LEASE_PATH, asdict(lease)):
            return lease
        held = client.get_data(LEASE_PATH)
        if held is not None:
            raise in_use(client, held)
    raise in_use(client, None)


@contextmanager
def hold(client: OPAClient) -> Iterator[Lease]:
    """The lease for the duration of the block, released at its end (even on an error;
    the block's error is then the one reported)."""
    held = take(client)
    try:
        yield held
    except BaseException:
        with suppress(GovernError):
            release(client, held)
        raise
    release(client, held)


def confirm(client: OPAClient, lease: Lease) -> None:
    """Still ours (after the upload, before any decision)? OPAInUse otherwise."""
    held = client.get_data(LEASE_PATH)
    if not _is(held, lease):
        raise in_use(client, held)


def release(client: OPAClient, lease: Lease) -> None:
    """Delete the lease if it is still ours (never another run's)."""
    if _is(client.get_data(LEASE_PATH), lease):
        client.delete_data(LEASE_PATH)


def _is(held: Any, lease: Lease) -> bool:
    return isinstance(held, dict) and held.get("run") == lease.run


def in_use(client: OPAClient, held: Any) -> OPAInUse:
    holder = held if isinstance(held, dict) else {}
    return OPAInUse(
        f"OPA at {client.url} is in use by run {holder.get('run', '?')} (host "
        f"{holder.get('host', '?')}, pid {holder.get('pid', '?')}, since "
        f"{holder.get('since', '?')}): two runs on one server overwrite each other's data; "
        f"wait for it, or give each run its own OPA (no opa.url). If that run is gone, clear "
        f"its lease: curl -X DELETE {client.url}/v1/data/{LEASE_PATH} (with your OPA token)")
