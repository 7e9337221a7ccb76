"""The directory from LDAP / Active Directory, through ldap3, read once per run.

Exact and fail-closed: every search is paged and its result code checked after every page
(ldap3 does not raise on sizeLimitExceeded, so a truncated result would look complete);
an unreachable server, a failed bind, a timeout or any non-success result raises
IdentityError. Only the mapped attributes are requested. Nested groups are kept as direct
edges (``subgroups``) and resolved by the consumer with cycle detection; with ``in_chain``
(Active Directory) the server resolves them, and a server that silently ignores the
matching rule is detected.
"""

from __future__ import annotations

import math
import ssl
import warnings
from pathlib import Path
from typing import Any, Iterator

from govern.engine.errors import IdentityError, first_line
from govern.engine.secrets import read_secret
from govern.engine.spec import LDAPDirectoryConfig

from .base import Group, Snapshot, User

# ldap3 2.9.1 imports names that pyasn1 >= 0.6 deprecates; that one warning only.
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ldap3\.utils\.asn1",
                        message=r"(tagMap|typeMap) is deprecated\. Please use "
                                r"(TAG_MAP|TYPE_MAP) instead\.")

# ldap3 2.9.1 checks the server certificate's name with ssl.match_hostname (deprecated in 3.11)
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ldap3\.core\.tls",
                        message=r"ssl\.match_hostname\(\) is deprecated")

import ldap3  # noqa: E402
from ldap3.core.exceptions import LDAPException  # noqa: E402
from ldap3.utils.conv import escape_filter_chars  # noqa: E402
from ldap3.utils.dn import parse_dn  # noqa: E402

PAGED_RESULTS = "1.2.840.113556.1.4.319"
IN_CHAIN = "1.2.840.113556.1.4.1941"
_RESULT_NAMES = {3: "timeLimitExceeded", 4: "sizeLimitExceeded", 11: "adminLimitExceeded",
                 32: "noSuchObject", 49: "invalidCredentials", 50: "insufficientAccessRights"}


def normalise_dn(dn: str) -> str:
    """A DN in a form two spellings of the same DN share (case, spaces, escaping)."""
    if not any(ch in dn for ch in '\\"+#;<>'):  # plain DN: no escapes, quotes or multi-RDNs
        return ",".join(f"{a.strip().lower()}={v.strip().lower()}"
                        for a, _, v in (part.partition("=") for part in dn.split(",")))
    try:
        return ",".join(f"{attr.strip().lower()}={value.strip().lower()}"
                        for attr, value, _ in parse_dn(dn, escape=False, strip=True))
    except LDAPException:
        return dn.strip().lower()


class LDAPDirectory:
    def __init__(self, config: LDAPDirectoryConfig, root: Path | None = None):
        self.config = config
        self.root = root or Path.cwd()
        self.round_trips = 0

    # ------------------------------------------------------------------ connection
    def _password(self) -> str | None:
        cfg = self.config
        password = read_secret(cfg.password_env, cfg.password_file, self.root,
                               "directory.password", IdentityError)
        if password is None and cfg.bind_dn:
            raise IdentityError("directory: bind_dn is set but neither password_env nor "
                                "password_file")
        return password

    def connect(self) -> ldap3.Connection:
        cfg = self.config
        tls = None
        if cfg.url.startswith("ldaps://") or cfg.start_tls:
            tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=cfg.ca_file,
                            version=ssl.PROTOCOL_TLS_CLIENT)
        timeout = max(1, math.ceil(cfg.timeout_seconds))  # ldap3 packs it as an integer
        server = ldap3.Server(cfg.url, use_ssl=cfg.url.startswith("ldaps://"), tls=tls,
                              connect_timeout=timeout, get_info=ldap3.NONE)
        conn = ldap3.Connection(server, user=cfg.bind_dn, password=self._password(),
                                receive_timeout=timeout, read_only=True,
                                raise_exceptions=False, auto_bind=ldap3.AUTO_BIND_NONE)
        try:
            conn.open()
            if cfg.start_tls and not conn.start_tls():
                raise IdentityError(f"directory {cfg.url}: StartTLS failed: "
                                    f"{conn.result.get('description')}")
            if not conn.bind():
                raise IdentityError(f"directory {cfg.url}: bind as {cfg.bind_dn or 'anonymous'} "
                                    f"failed: {conn.result.get('description')}")
        except (LDAPException, OSError) as exc:
            _close(conn)
            raise IdentityError(f"directory {cfg.url}: {first_line(exc)}") from exc
        except IdentityError:
            _close(conn)
            raise
        return conn

    # ------------------------------------------------------------------ searching
    def search(self, conn: ldap3.Connection, base: str, search_filter: str,
               attributes: list[str]) -> Iterator[tuple[str, dict[str, list[str]]]]:
        """Every entry under ``base``, page by page; raises on any non-success result."""
        cookie: Any = None
        while True:
            try:
                conn.search(base, search_filter, search_scope=ldap3.SUBTREE,
                            attributes=attributes, paged_size=self.config.page_size,
                            paged_cookie=cookie)
            except (LDAPException, OSError) as exc:
                raise IdentityError(f"directory {self.config.url}: search under {base} failed: "
                                    f"{first_line(exc)}") from exc
            self.round_trips += 1
            result = conn.result or {}
            code = result.get("result")
            if code != 0:
                name = _RESULT_NAMES.get(code, result.get("description") or code)
                raise IdentityError(f"directory {self.config.url}: search under {base} returned "
                                    f"{name}; refusing a partial directory")
            for entry in conn.response or []:
                if entry.get("type") != "searchResEntry":
                    continue
                raw = entry.get("raw_attributes") or {}
                yield entry["dn"], {k.lower(): [_text(v) for v in values]
                                    for k, values in raw.items()}
            cookie = (result.get("controls") or {}).get(PAGED_RESULTS, {}) \
                .get("value", {}).get("cookie")
            if not cookie:
                return

    # ------------------------------------------------------------------ snapshot
    def snapshot(self) -> Snapshot:
        cfg = self.config
        conn = self.connect()
        try:
            users, by_dn = self._users(conn)
            groups = self._groups(conn, users, by_dn)
        finally:
            _close(conn)
        return Snapshot(users, groups, source=cfg.url)

    def _users(self, conn: ldap3.Connection) -> tuple[dict[str, User], dict[str, str]]:
        u = self.config.users
        wanted = [u.id_attribute, u.display_name_attribute, u.email_attribute,
                  *u.attributes.values()]
        users: dict[str, User] = {}
        by_dn: dict[str, str] = {}
        for base in u.bases:
            for dn, attrs in self.search(conn, base, u.filter, sorted(set(wanted))):
                ids = attrs.get(u.id_attribute.lower()) or []
                if len(ids) != 1 or not ids[0].strip():
                    raise IdentityError(f"directory: user {dn} has {len(ids)} values of "
                                        f"{u.id_attribute}; need exactly one")
                uid = ids[0].strip().lower()
                if uid in users:
                    raise IdentityError(f"directory: user id {uid!r} is used by two entries "
                                        f"({by_dn_of(by_dn, uid)} and {dn})")
                mapped: dict[str, str | tuple[str, ...]] = {}
                for name, ldap_name in u.attributes.items():
                    values = attrs.get(ldap_name.lower())
                    if values:
                        mapped[name] = values[0] if len(values) == 1 else tuple(sorted(values))
                display = (attrs.get(u.display_name_attribute.lower()) or [""])[0]
                email = (attrs.get(u.email_attribute.lower()) or [None])[0]
                users[uid] = User(uid, display, email, mapped)
                by_dn[normalise_dn(dn)] = uid
        return users, by_dn

    def _groups(self, conn: ldap3.Connection, users: dict[str, User],
                user_dns: dict[str, str]) -> dict[str, Group]:
        g = self.config.groups
        member_attr = g.member_attribute.lower()
        raw: dict[str, tuple[str, list[str]]] = {}  # normalised dn -> (name, member values)
        names: dict[str, str] = {}
        for base in g.bases:
            for dn, attrs in self.search(conn, base, g.filter, [g.name_attribute,
                                                                g.member_attribute]):
                values = attrs.get(g.name_attribute.lower()) or []
                if not values:
                    raise IdentityError(f"directory: group {dn} has no {g.name_attribute}")
                name = values[0]
                if name in names:
                    raise IdentityError(f"directory: group name {name!r} is used by two "
                                        f"entries ({names[name]} and {dn})")
                names[name] = dn
                raw[normalise_dn(dn)] = (name, attrs.get(member_attr, []))
        group_dns = {key: name for key, (name, _) in raw.items()}
        groups: dict[str, Group] = {}
        for name, values in raw.values():
            members: set[str] = set()
            subgroups: set[str] = set()
            for value in values:
                if member_attr == "memberuid":
                    if value.strip().lower() in users:
                        members.add(value.strip().lower())
                    continue
                ref = normalise_dn(value)
                if ref in user_dns:
                    members.add(user_dns[ref])
                elif ref in group_dns:
                    subgroups.add(group_dns[ref])
                # other DNs (service accounts outside the user bases, placeholders) are not
                # principals of this mesh
            if g.in_chain:
                members = self._in_chain(conn, names[name], members, user_dns)
            groups[name] = Group(name, frozenset(members), frozenset(subgroups))
        return groups

    def _in_chain(self, conn: ldap3.Connection, group_dn: str, direct: set[str],
                  user_dns: dict[str, str]) -> set[str]:
        u = self.config.users
        chain = f"(&{u.filter}(memberOf:{IN_CHAIN}:={escape_filter_chars(group_dn)}))"
        found: set[str] = set()
        for base in u.bases:
            for dn, _ in self.search(conn, base, chain, [u.id_attribute]):
                uid = user_dns.get(normalise_dn(dn))
                if uid:
                    found.add(uid)
        if direct and not found:
            raise IdentityError(f"directory {self.config.url}: group {group_dn} has direct "
                                f"members but the in-chain query ({IN_CHAIN}) returned none: "
                                "the server does not support it; set in_chain: false")
        return found | direct


def by_dn_of(by_dn: dict[str, str], uid: str) -> str:
    return next((dn for dn, u in by_dn.items() if u == uid), "?")


def _close(conn: ldap3.Connection) -> None:
    """Unbind and close; a connection that already broke is closed all the same."""
    try:
        conn.unbind()
    except (LDAPException, OSError):
        try:
            if conn.socket is not None:
                conn.socket.close()
        except OSError:
            pass


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)

