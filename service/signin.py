"""Sign-in for ``govern serve``: who is at the keyboard, as a directory user id.

- :class:`LDAPSignIn` (the real thing): find the user's DN by searching ``users.bases`` for
  ``id_attribute`` with the service account, then bind as that DN with the given password,
  both through :meth:`govern.identity.ldap.LDAPDirectory.connect` (same TLS, timeouts).
- :class:`DevSignIn` (``govern serve --dev``, file directory only): any directory user,
  without a password; every page then shows a "development mode" banner.

Every failure of the user's own credentials reads the same ("sign-in failed"), whether the
user exists or not; a directory that cannot be reached is an IdentityError (503).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from govern.engine.errors import GovernError, IdentityError
from govern.engine.mesh import Mesh
from govern.engine.requests import NotAuthenticated
from govern.engine.spec import FileDirectoryConfig, LDAPDirectoryConfig
from govern.engine.directory import Snapshot
from govern.identity.ldap import LDAPDirectory  # installs ldap3's one warning filter

from ldap3.utils.conv import escape_filter_chars  # noqa: E402

FAILED = "sign-in failed: unknown user or wrong password"
MAX_NAME = 256
MAX_PASSWORD = 1024


class SignIn(Protocol):
    dev: bool

    def verify(self, username: str, password: str) -> str:
        """The directory user id, or NotAuthenticated."""
        ...


class DevSignIn:
    """Development mode: any user of a file directory, no password."""

    dev = True

    def __init__(self, snapshot: Snapshot):
        self.snapshot = snapshot

    def verify(self, username: str, password: str) -> str:
        uid = (username or "").strip().lower()
        if not uid or uid not in self.snapshot.users:
            raise NotAuthenticated(f"sign-in failed: {uid[:64]!r} is not a directory user")
        return uid


class _AsUser(LDAPDirectory):
    """The configured directory, bound as one user with that user's password."""

    def __init__(self, config: LDAPDirectoryConfig, root: Path, password: str):
        super().__init__(config, root)
        self._user_password = password

    def _password(self) -> str | None:
        return self._user_password


class LDAPSignIn:
    """A simple bind as the user, against the directory configured in govern.yaml."""

    dev = False

    def __init__(self, config: LDAPDirectoryConfig, root: Path, snapshot: Snapshot):
        self.config = config
        self.root = root
        self.snapshot = snapshot

    def verify(self, username: str, password: str) -> str:
        uid = (username or "").strip().lower()
        # an empty password would be an unauthenticated bind, which LDAP servers accept
        if not uid or not password or len(uid) > MAX_NAME or len(password) > MAX_PASSWORD:
            raise NotAuthenticated(FAILED)
        if uid not in self.snapshot.users:
            raise NotAuthenticated(FAILED)
        dn = self._find_dn(uid)
        try:
            _AsUser(self.config.model_copy(update={"bind_dn": dn}), self.root,
                    password).connect().unbind()
        except IdentityError as exc:
            # connect() chains the cause of a transport failure; a refused bind has none
            if exc.__cause__ is not None:
                raise
            raise NotAuthenticated(FAILED) from None
        return uid

    def _find_dn(self, uid: str) -> str:
        users = self.config.users
        directory = LDAPDirectory(self.config, self.root)
        conn = directory.connect()
        found: list[str] = []
        try:
            query = f"(&{users.filter}({users.id_attribute}={escape_filter_chars(uid)}))"
            for base in users.bases:
                for dn, attrs in directory.search(conn, base, query, [users.id_attribute]):
                    ids = [v.strip().lower() for v in attrs.get(users.id_attribute.lower(), [])]
                    if uid in ids:
                        found.append(dn)
        finally:
            conn.unbind()
        if len(found) != 1:
            raise NotAuthenticated(FAILED)
        return found[0]


def check_mode(mesh_directory: FileDirectoryConfig | LDAPDirectoryConfig, dev: bool) -> None:
    """Refuse a sign-in mode that cannot work, before anything starts."""
    if dev and not isinstance(mesh_directory, FileDirectoryConfig):
        raise GovernError("govern serve --dev signs in without passwords and works only with "
                          "a file directory (directory.source: file)")
    if not dev and not isinstance(mesh_directory, LDAPDirectoryConfig):
        raise GovernError("govern serve signs owners in with an LDAP bind: configure "
                          "directory.source: ldap, or use --dev with the file directory")


def make_signin(mesh: Mesh, snapshot: Snapshot, dev: bool) -> SignIn:
    directory = mesh.config.directory
    check_mode(directory, dev)
    if isinstance(directory, LDAPDirectoryConfig):
        return LDAPSignIn(directory, mesh.root, snapshot)
    return DevSignIn(snapshot)
