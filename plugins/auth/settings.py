"""The `[plugins.auth]` table: users, ACL rules, TLS identity, the Redis source and login throttling."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .passwords import InvalidHashError, check_hash

Access = Literal["read", "write", "readwrite"]
"""What a rule is about: subscribing (read), publishing (write), or both."""

Effect = Literal["allow", "deny"]
"""Whether a matching rule grants or refuses."""

TlsIdentity = Literal["cn", "san_dns", "san_email", "none"]
"""Which part of a verified client certificate names the user."""


class _RefusedPassword:
    """Stands in for a password that is not a usable hash, so error reports never echo the secret."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __repr__(self) -> str:
        return "'<hidden>'"


_REFUSAL_ADVICE = "plain-text passwords are refused, create a hash with `hookmq passwd`"


class UserEntry(BaseModel):
    """One user of the `file` source. In TOML: ``[plugins.auth.users.alice] password = "$scrypt$…"``."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    password: str | None = Field(
        default=None,
        description="A hash printed by `hookmq passwd`; omit for a user who only logs in by client certificate.",
        json_schema_extra={"secret": True},
    )

    @field_validator("password", mode="before")
    @classmethod
    def _password_is_a_hash(cls, value: Any) -> Any:
        if isinstance(value, _RefusedPassword):
            raise ValueError(value.message)
        if isinstance(value, str):
            try:
                check_hash(value)
            except InvalidHashError as exc:
                raise ValueError(f"the password is not a usable hash ({exc}); {_REFUSAL_ADVICE}") from None
        return value


class AclRule(BaseModel):
    """One ACL rule; the same fields are used in the TOML file and (as JSON) in Redis."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str = Field(
        min_length=1,
        description="Topic filter; `%u` is replaced by the user name and `%c` by the client id.",
    )
    access: Access = Field(default="readwrite", description="`read` (subscribe), `write` (publish) or `readwrite`.")
    effect: Effect = Field(default="allow", description="`allow` grants, `deny` refuses.")
    user: str | None = Field(default=None, description="Only for this user name (the TLS identity when one is used).")
    client_id: str | None = Field(default=None, description="Only for this client identifier.")

    @field_validator("topic")
    @classmethod
    def _wildcards_are_whole_levels(cls, value: str) -> str:
        levels = value.split("/")
        for index, level in enumerate(levels):
            if level in ("+", "#"):
                if level == "#" and index != len(levels) - 1:
                    raise ValueError(f"ACL topic {value!r}: '#' must be the last level")
            elif "+" in level or "#" in level:
                raise ValueError(f"ACL topic {value!r}: wildcards must fill a whole level")
        return value


class AuthSettings(BaseModel):
    """Settings of the auth plugin: the `[plugins.auth]` table (see docs/auth.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    allow_anonymous: bool = Field(default=False, description="Let clients connect without a user name.")
    source: Literal["file", "redis"] = Field(default="file", description="Where users and ACL rules come from.")
    users: dict[str, UserEntry] = Field(
        default_factory=dict,
        description='`file` source: user name -> entry; a bare string is the password hash (`alice = "$scrypt$…"`).',
    )
    acl: list[AclRule] = Field(default_factory=list, description="`file` source: the ACL rules.")
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="`redis` source: the server.")
    redis_prefix: str = Field(default="hookmq:auth:", description="`redis` source: prefix of every key read.")
    cache_ttl: float = Field(
        default=5.0, ge=0,
        description="`redis` source: seconds users and rules are reused before they are read again (0 = every time).",
    )
    tls_identity: TlsIdentity = Field(
        default="none",
        description="Take the user name from a verified client certificate: its CN, first DNS or e-mail SAN.",
    )
    tls_identity_requires_password: bool = Field(
        default=False, description="With a certificate identity, still require that user's password.",
    )
    deny_overlapping_subscriptions: bool = Field(
        default=False,
        description="Refuse a wildcard subscription that merely overlaps a denied filter (default: only one inside it).",
    )
    max_failed_logins: int = Field(default=5, ge=1, description="Failures per remote host tolerated within the window.")
    failed_login_window: float = Field(default=60.0, gt=0, description="Seconds over which failures are counted.")
    lockout_base: float = Field(default=1.0, gt=0, description="First lockout once the limit is exceeded, in seconds.")
    lockout_max: float = Field(default=300.0, gt=0, description="Longest lockout; each further failure doubles it up to this.")
    max_concurrent_hashes: int = Field(
        default=4, ge=1, description="Password checks running at once (each scrypt check holds ~16 MiB).",
    )

    @field_validator("users", mode="before")
    @classmethod
    def _hide_unusable_passwords(cls, value: Any) -> Any:
        # pydantic reports the raw input of a failing field; swap a bad password for a marker
        # first, so neither the message nor the config error can reveal it.
        if not isinstance(value, dict):
            return value
        return {name: _screen_entry(name, entry) for name, entry in value.items()}

    def unused_keys(self) -> set[str]:
        """Keys with no effect given the source and the TLS identity (`hookmq config show` omits them)."""
        unused = {"users", "acl"} if self.source == "redis" else {"redis_url", "redis_prefix", "cache_ttl"}
        if self.tls_identity == "none":
            unused.add("tls_identity_requires_password")
        return unused

    @model_validator(mode="after")
    def _one_source(self) -> AuthSettings:
        if self.source == "redis" and (self.users or self.acl):
            raise ValueError("with source = 'redis', users and acl live in Redis: remove them from the file")
        if self.lockout_max < self.lockout_base:
            raise ValueError("lockout_max must be at least lockout_base")
        return self


def _screen_entry(name: str, entry: Any) -> Any:
    """Normalise a user entry (a bare string is the hash) and mask a password that is no hash."""
    if isinstance(entry, str):
        entry = {"password": entry}
    if not isinstance(entry, dict) or not isinstance(entry.get("password"), str):
        return entry
    try:
        check_hash(entry["password"])
    except InvalidHashError as exc:
        message = f"user {name!r}: the password is not a usable hash ({exc}); {_REFUSAL_ADVICE}"
        return {**entry, "password": _RefusedPassword(message)}
    return entry
