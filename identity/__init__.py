"""Directory sources: who a principal is, which groups it is in, which attributes it has.

``open_source(config, root)`` gives the configured source; each returns a whole
:class:`~govern.identity.base.Snapshot` or raises IdentityError.
"""

from __future__ import annotations

from pathlib import Path

from govern.engine.spec import FileDirectoryConfig, LDAPDirectoryConfig

from .base import DirectorySource


def open_source(config: FileDirectoryConfig | LDAPDirectoryConfig, root: Path) -> DirectorySource:
    if isinstance(config, LDAPDirectoryConfig):
        from .ldap import LDAPDirectory

        return LDAPDirectory(config, root)
    from .file import FileDirectory

    path = Path(config.path)
    return FileDirectory(path if path.is_absolute() else root / path)
