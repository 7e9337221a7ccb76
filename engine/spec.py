"""The metamodel: pydantic models for ``govern.yaml`` and ``product.yaml``.

Models forbid unknown fields, so a typo is an error rather than a silently ignored key.
``govern schema`` prints the JSON Schema generated from these models.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

# A lower-case identifier: product, domain and port names, target names.
Ident = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]
# A store object name (schema, table, column): any printable text; the connector quotes it.
ObjectName = Annotated[str, StringConstraints(min_length=1, max_length=255,
                                              pattern=r"^[^\x00-\x1f\x7f]+$")]
PRODUCT_REF_PATTERN = r"^[a-z][a-z0-9_]*/[a-z][a-z0-9_]*$"  # domain/name
ProductRef = Annotated[str, StringConstraints(pattern=PRODUCT_REF_PATTERN)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Classification(str, enum.Enum):
    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    SECRET = "secret"


CLASSIFICATION_RANK = {c: i for i, c in enumerate(Classification)}


class AccessMode(str, enum.Enum):
    OPEN = "open"
    APPROVAL_REQUIRED = "approval-required"


class Distribution(str, enum.Enum):
    NONE = "none"
    UNMODIFIED = "unmodified"
    MODIFIED = "modified"


class ProductType(str, enum.Enum):
    SOURCE_ALIGNED = "source-aligned"
    CONSUMER_ALIGNED = "consumer-aligned"


# ---------------------------------------------------------------- product.yaml

class Column(Strict):
    name: ObjectName
    type: str | None = Field(default=None, description="Column data type, e.g. text, date")
    description: str | None = None
    pii: bool = Field(default=False, description="The column holds personal data")
    classification: Classification | None = Field(
        default=None, description="The column's own classification, if above the product's")


class Dataset(Strict):
    name: ObjectName = Field(description="Table or view name in the port's schema")
    description: str | None = None
    columns: list[Column] = Field(default_factory=list)
    sample: bool = Field(default=False, description="This dataset is the product's example "
                         "/ sample data (self-describing fitness)")
    freshness_column: ObjectName | None = Field(
        default=None, description="Timestamp column whose max() is the last refresh "
        "(trustworthy fitness, against a freshness SLO)")

    @field_validator("columns")
    @classmethod
    def _unique_columns(cls, value: list[Column]) -> list[Column]:
        _unique([c.name for c in value], "column")
        return value


class Location(Strict):
    database: ObjectName | None = Field(
        default=None, description="Database (PostgreSQL/Snowflake/Redshift) or LF database")
    schema_: ObjectName | None = Field(default=None, alias="schema",
                                       description="Schema holding the port's datasets")


class Port(Strict):
    name: Ident
    description: str | None = None
    target: Ident = Field(description="A target name declared in govern.yaml")
    format: str = Field(default="table", description="table, view, iceberg, parquet, … "
                        "(checked against fitness.allowed_formats)")
    location: Location
    datasets: list[Dataset] = Field(min_length=1)

    @field_validator("datasets")
    @classmethod
    def _unique_datasets(cls, value: list[Dataset]) -> list[Dataset]:
        _unique([d.name for d in value], "dataset")
        return value

    @property
    def pii(self) -> bool:
        return any(c.pii for d in self.datasets for c in d.columns)


class Privacy(Strict):
    contains_pii: bool = False
    regulations: list[str] = Field(default_factory=list)


class SLO(Strict):
    name: str
    target: str
    indicator: str


class Input(Strict):
    product: ProductRef
    exception: str | None = Field(
        default=None, description="Why this product may be classified below this input")


class Waiver(Strict):
    """A fitness check this product may fail, for a reason, until a date."""

    check: str = Field(description="Fitness check id, e.g. trustworthy.freshness")
    reason: str = Field(min_length=1)
    approver: str = Field(min_length=1)
    expires: dt.date


class ProductSpec(Strict):
    """One data product: ``products/<domain>/<name>/product.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True,
                              json_schema_extra={"title": "govern product.yaml"})

    name: Ident
    domain: Ident
    description: str = Field(min_length=1)
    owner: str = Field(min_length=1, description="Steward: a directory user or group")
    stewards: list[Annotated[str, StringConstraints(min_length=1)]] = Field(
        default_factory=list, description="Further directory users or groups who, with the "
        "owner, approve access requests")
    classification: Classification
    access: AccessMode
    sharing_agreement: str = Field(min_length=1,
                                   description="Data sharing agreement text or URL")
    distribution: Distribution
    type: ProductType
    privacy: Privacy = Field(default_factory=Privacy)
    slos: list[SLO] = Field(default_factory=list)
    inputs: list[Input] = Field(default_factory=list)
    ports: list[Port] = Field(min_length=1)
    waivers: list[Waiver] = Field(default_factory=list)

    @field_validator("inputs", mode="before")
    @classmethod
    def _inputs_as_objects(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"product": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("ports")
    @classmethod
    def _unique_ports(cls, value: list[Port]) -> list[Port]:
        _unique([p.name for p in value], "port")
        return value

    @property
    def ref(self) -> str:
        return f"{self.domain}/{self.name}"

    def port(self, name: str) -> Port:
        for port in self.ports:
            if port.name == name:
                return port
        raise KeyError(name)


# ---------------------------------------------------------------- govern.yaml

class OPAConfig(Strict):
    url: str | None = Field(default=None, description="An OPA server you run; none = govern "
                            "starts its own on a private Unix socket, behind a token of the "
                            "run. With upload, one run at a time holds a lease on a server "
                            "you run (docs/security.md)")
    binary: str | None = Field(default=None, description="Path of the opa binary to start")
    token_env: str | None = Field(default=None, description="Env var holding a bearer token")
    token_file: str | None = None
    ca_file: str | None = Field(default=None, description="CA bundle to verify OPA's TLS")
    timeout_seconds: float = Field(default=30.0, gt=0)
    concurrency: int = Field(default=8, ge=1, le=64)
    upload: bool = Field(default=True, description="Upload policies and data (false when "
                         "your OPA server already has them from a bundle)")


class FileDirectoryConfig(Strict):
    """The directory as a YAML file (see identity/file.py; `govern directory export`)."""

    source: Literal["file"] = "file"
    path: str = "directory.yaml"
    max_shrink_fraction: float = Field(default=0.1, ge=0, le=1, description="Fail when the "
                                       "directory has this fraction fewer users or memberships "
                                       "than at the last successful read")


class LDAPUsers(Strict):
    bases: list[str] = Field(min_length=1, description="Base DNs searched for users (subtree)")
    filter: str = "(objectClass=inetOrgPerson)"
    id_attribute: str = Field(default="uid", description="uid, or sAMAccountName on AD; "
                              "lower-cased into the principal id")
    display_name_attribute: str = "cn"
    email_attribute: str = "mail"
    attributes: dict[str, str] = Field(default_factory=dict, description="Policy attribute "
                                       "name -> LDAP attribute, e.g. "
                                       "{department: departmentNumber}")


class LDAPGroups(Strict):
    bases: list[str] = Field(min_length=1, description="Base DNs searched for groups (subtree)")
    filter: str = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))"
    name_attribute: str = "cn"
    member_attribute: str = Field(default="member", description="member, uniqueMember, or "
                                  "memberUid (values are uids, not DNs)")
    in_chain: bool = Field(default=False, description="Active Directory: resolve nested "
                           "membership on the server (LDAP_MATCHING_RULE_IN_CHAIN)")


class LDAPDirectoryConfig(Strict):
    """An LDAP / Active Directory server, read once per run (identity/ldap.py)."""

    source: Literal["ldap"]
    url: str = Field(pattern=r"^ldaps?://", description="ldap://host:389 or ldaps://host:636")
    bind_dn: str | None = Field(default=None, description="None = anonymous bind")
    password_env: str | None = Field(default=None, description="Env var holding the password")
    password_file: str | None = None
    start_tls: bool = False
    ca_file: str | None = Field(default=None, description="CA bundle for ldaps / StartTLS")
    timeout_seconds: float = Field(default=30.0, gt=0)
    page_size: int = Field(default=500, ge=1, le=10000)
    users: LDAPUsers
    groups: LDAPGroups
    max_shrink_fraction: float = Field(default=0.1, ge=0, le=1, description="Fail when the "
                                       "directory has this fraction fewer users or memberships "
                                       "than at the last successful read")


DirectoryConfig = Annotated[FileDirectoryConfig | LDAPDirectoryConfig,
                            Field(discriminator="source")]


class ApprovalsConfig(Strict):
    path: str | None = Field(default=None, description="YAML file of access requests")


class WebhookConfig(Strict):
    url: str | None = Field(default=None, pattern=r"^https?://", description="POSTed a JSON "
                            "event on every request state change")
    url_env: str | None = Field(default=None, description="Env var holding the URL (when it "
                                "carries a token)")
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)


class RequestsConfig(Strict):
    """The access-request workflow (engine/requests.py, docs/requests.md)."""

    url: str | None = Field(default=None, description="SQLAlchemy URL of the request store: "
                            "sqlite:///path (relative to the mesh) or postgresql+psycopg://...; "
                            "default sqlite:///.govern/requests.db")
    url_env: str | None = Field(default=None, description="Env var holding the store URL "
                                "(when it carries a password)")
    max_days: int = Field(default=365, ge=1, le=3650, description="Longest approval a request "
                          "may ask for, in days from today")
    webhook: WebhookConfig | None = Field(default=None, description="Optional notification "
                                          "hook; a failing hook never blocks the workflow")


class TargetConfig(Strict):
    type: Literal["postgresql"]
    dsn: str | None = Field(default=None, description="libpq connection string")
    dsn_env: str | None = Field(default=None, description="Env var holding the DSN")
    create_login_roles: bool = Field(
        default=False, description="Create a LOGIN role for directory users missing in the "
        "store (otherwise they are reported and skipped)")
    principal_template: str = Field(
        default="{id}", description="Store role name of a directory user; fields: {id}, "
        "{email}, {display_name}, {attr[NAME]}")
    batch_size: int = Field(default=200, ge=1, le=10000)
    address: str | None = Field(default=None, description="Base address of datasets, e.g. "
                                "postgresql://warehouse.example.com:5432/pharma (default: "
                                "from the DSN)")
    connect_timeout_seconds: int = Field(default=10, ge=1)


NamespaceGlob = Annotated[str, StringConstraints(min_length=1, max_length=255,
                                                 pattern=r"^[^\x00-\x1f\x7f]+$")]


class DomainConfig(Strict):
    team: str | None = Field(default=None, description="Directory group of the domain team "
                             "(default <domain>-team)")
    namespaces: dict[Ident, list[NamespaceGlob]] = Field(
        default_factory=dict, description="Per target, the store containers this domain's "
        "ports may live in (PostgreSQL: schema names; shell-style globs, case-sensitive), "
        "e.g. {warehouse: [hcp_master, hcp_*]}. A port outside its domain's namespace is "
        "refused by validate")


class PlanSigningConfig(Strict):
    """Saved plans signed with HMAC-SHA256, so that CI can prove a plan came from its own
    plan job (docs/guide.md)."""

    key_env: str = Field(default="GOVERN_PLAN_SIGNING_KEY", description="Env var holding the "
                         "signing key; when set, `plan --out` signs and `apply PLAN` verifies")
    required: bool = Field(default=False, description="Refuse to apply a saved plan unless "
                           "its signature verifies with the key")


class GuardsConfig(Strict):
    max_revoke_fraction: float = Field(default=0.25, ge=0, le=1)
    min_revokes: int = Field(default=10, ge=0,
                             description="Below this many revokes the guard never trips")


class PlatformWaiver(Waiver):
    product: ProductRef


class FitnessConfig(Strict):
    allowed_formats: list[str] = Field(default_factory=lambda: ["table", "view"],
                                       description="Output port formats the mesh accepts")
    waivers: list[PlatformWaiver] = Field(default_factory=list)
    history_path: str = Field(default=".govern/fitness-history.jsonl", description="Every "
                              "whole-mesh run's statuses, one JSON line each (the trend)")
    latest_path: str = Field(default=".govern/fitness-latest.json", description="The last "
                             "whole-mesh run with its reasons (published to the catalog)")


class BuiltinCatalogConfig(Strict):
    """The built-in catalog, in the request store's database (searchable in `govern serve`)."""

    kind: Literal["builtin"] = "builtin"


class DataHubCatalogConfig(Strict):
    """DataHub, through its Python SDK (the optional extra ``govern[datahub]``)."""

    kind: Literal["datahub"]
    server: str = Field(pattern=r"^https?://", description="DataHub GMS URL, e.g. "
                        "https://datahub.example.com/api/gms")
    token_env: str | None = Field(default=None, description="Env var holding the access token")
    token_file: str | None = None
    timeout_seconds: float = Field(default=30.0, gt=0)
    retries: int = Field(default=2, ge=0, le=10, description="Retries of a failed call "
                         "(with the SDK's backoff) before publish fails")


class CollibraCatalogConfig(Strict):
    """Collibra, through its REST API 2.0 (assets keyed by a stable external id)."""

    kind: Literal["collibra"]
    url: str = Field(pattern=r"^https?://", description="e.g. https://acme.collibra.com")
    username_env: str | None = Field(default=None, description="Env var holding the user name")
    password_env: str | None = Field(default=None, description="Env var holding the password")
    password_file: str | None = None
    community: str = Field(default="Data Mesh", description="Community holding one domain "
                           "per mesh domain")
    external_system: str = Field(default="govern", description="externalSystemId of every "
                                 "asset govern creates")
    timeout_seconds: float = Field(default=30.0, gt=0)
    ca_file: str | None = None


CatalogConfig = Annotated[BuiltinCatalogConfig | DataHubCatalogConfig | CollibraCatalogConfig,
                          Field(discriminator="kind")]


class AuditConfig(Strict):
    path: str = ".govern/audit.jsonl"


class MeshConfig(Strict):
    """Mesh-wide settings: ``govern.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True,
                              json_schema_extra={"title": "govern govern.yaml"})

    name: str = "mesh"
    products: list[str] = Field(default_factory=lambda: ["products/*/*"],
                                description="Globs of product folders")
    managed_prefix: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$",
                                                     max_length=20)] = "dp_"
    policies: list[str] = Field(default_factory=list, description="Globs of the mesh's own "
                                "platform Rego (extra guardrails, fitness checks), uploaded "
                                "beside the built-in ones")
    opa: OPAConfig = Field(default_factory=OPAConfig)
    directory: DirectoryConfig = Field(default_factory=FileDirectoryConfig)
    approvals: ApprovalsConfig = Field(default_factory=ApprovalsConfig)
    requests: RequestsConfig = Field(default_factory=RequestsConfig)
    targets: dict[Ident, TargetConfig] = Field(min_length=1)
    domains: dict[Ident, DomainConfig] = Field(default_factory=dict)
    guards: GuardsConfig = Field(default_factory=GuardsConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    plan_signing: PlanSigningConfig = Field(default_factory=PlanSigningConfig)
    fitness: FitnessConfig = Field(default_factory=FitnessConfig)
    catalog: CatalogConfig = Field(default_factory=BuiltinCatalogConfig,
                                   description="Where `govern catalog publish` publishes")


def _unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"duplicate {what} name {name!r}")
        seen.add(name)
