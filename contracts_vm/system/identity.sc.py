"""Identity registry: organisations, accounts, roles and X25519 encryption keys.

Organisations and their admin keys come from genesis (genesis_org / genesis_account,
callable only before seal()). Afterwards an organisation admin registers accounts of
its organisation, grants and revokes roles and revokes accounts; an account rotates
its own encryption key or moves itself to a new signing key. Every other contract
asks has_role / is_active before letting a sender act.
"""

#: The sender genesis uses; its private key is unknown (not a valid ed25519 point).
GENESIS_SENDER = b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
#: Signing and encryption keys are 32 bytes (ed25519 / X25519).
KEY_BYTES = 32
#: Most roles one account may hold (there are nine).
MAX_ROLES = 9
#: Most admin keys of one organisation.
MAX_ADMINS = 64


class Org(Record):
    admins: list[bytes]
    active: bool


class Account(Record):
    org: str
    roles: list[str]
    enc_key: bytes
    active: bool
    registered_at: int
    rotated_to: bytes


sealed: bool
platform_org: str
orgs: Map[str, Org]
admin_of: Map[bytes, str]
accounts: Map[bytes, Account]


def _is_role(r) -> bool:
    return r in ["PLATFORM", "MERCHANT", "BUYER", "CARRIER", "SERVICE_CENTER", "ARBITER", "ISSUER", "TREASURY", "AUDITOR"]


def _platform_only(r) -> bool:
    """Roles only an admin of the platform organisation may grant."""
    return r in ["PLATFORM", "TREASURY", "ARBITER", "AUDITOR"]


def _genesis_only() -> None:
    require(ctx.sender == GENESIS_SENDER, "only genesis may call this")
    require(not self.sealed, "genesis is sealed")


def _check_roles(roles) -> None:
    require(len(roles) >= 1 and len(roles) <= MAX_ROLES, "expected 1..9 roles, found " + str(len(roles)))
    seen = []
    for r in roles:
        require(_is_role(r), "unknown role " + r)
        require(not (r in seen), "role listed twice: " + r)
        seen.append(r)


def _check_enc_key(k) -> None:
    require(len(k) == 0 or len(k) == KEY_BYTES, "encryption key must be empty or 32 bytes, found " + str(len(k)))


def _admin_org(who) -> str:
    org = self.admin_of.get(who, "")
    require(org != "", "sender is not an organisation admin")
    require(self.orgs[org].active, "organisation " + org + " is not active")
    return org


def _may_grant(admin_org, role) -> None:
    if _platform_only(role):
        require(admin_org == self.platform_org, "only a platform organisation admin may grant " + role)


@public
def genesis_org(org_id: str, admins: list[bytes], is_platform: bool) -> None:
    _genesis_only()
    require(not (org_id in self.orgs), "organisation already exists: " + org_id)
    require(len(admins) >= 1 and len(admins) <= MAX_ADMINS, "expected 1..64 admin keys")
    for a in admins:
        require(len(a) == KEY_BYTES, "admin keys are 32 bytes")
        require(not (a in self.admin_of), "a key administers one organisation only")
        self.admin_of[a] = org_id
    self.orgs[org_id] = Org(admins=admins, active=True)
    if is_platform:
        self.platform_org = org_id


@public
def genesis_account(account: bytes, org_id: str, roles: list[str], enc_key: bytes) -> None:
    _genesis_only()
    _add(account, org_id, roles, enc_key)


@public
def seal() -> None:
    _genesis_only()
    self.sealed = True


def _add(account, org_id, roles, enc_key) -> None:
    require(len(account) == KEY_BYTES, "account keys are 32 bytes, found " + str(len(account)))
    require(org_id in self.orgs, "unknown organisation " + org_id)
    require(not (account in self.accounts), "account already registered")
    _check_roles(roles)
    _check_enc_key(enc_key)
    self.accounts[account] = Account(org=org_id, roles=roles, enc_key=enc_key, active=True,
                                     registered_at=ctx.height, rotated_to=b"")
    emit(AccountRegistered, account=account, org=org_id)
    for r in roles:
        emit(RoleGranted, account=account, role=r)


@public
def register(account: bytes, roles: list[str], enc_key: bytes) -> None:
    org = _admin_org(ctx.sender)
    for r in roles:
        _may_grant(org, r)
    _add(account, org, roles, enc_key)


def _managed(account) -> Account:
    org = _admin_org(ctx.sender)
    acct = self.accounts.get(account)
    require(acct != None, "account is not registered")
    require(acct.org == org, "account belongs to organisation " + acct.org + ", not " + org)
    return acct


@public
def grant_role(account: bytes, role: str) -> None:
    acct = _managed(account)
    require(_is_role(role), "unknown role " + role)
    _may_grant(acct.org, role)
    require(acct.active, "account is revoked")
    require(not (role in acct.roles), "account already holds " + role)
    acct.roles.append(role)
    self.accounts[account] = acct
    emit(RoleGranted, account=account, role=role)


@public
def revoke_role(account: bytes, role: str) -> None:
    acct = _managed(account)
    require(role in acct.roles, "account does not hold " + role)
    kept = []
    for r in acct.roles:
        if r != role:
            kept.append(r)
    acct.roles = kept
    self.accounts[account] = acct
    emit(RoleRevoked, account=account, role=role)


@public
def revoke_account(account: bytes) -> None:
    acct = _managed(account)
    require(acct.active, "account is already revoked")
    acct.active = False
    self.accounts[account] = acct
    emit(AccountRevoked, account=account)


@public
def rotate_encryption_key(new_key: bytes) -> None:
    acct = self.accounts.get(ctx.sender)
    require(acct != None and acct.active, "sender is not an active account")
    _check_enc_key(new_key)
    acct.enc_key = new_key
    self.accounts[ctx.sender] = acct
    emit(KeyRotated, account=ctx.sender, kind="encryption", new_key=new_key)


@public
def rotate_signing_key(new_account: bytes) -> None:
    """Move roles and organisation to a new signing key; the old key is revoked."""
    acct = self.accounts.get(ctx.sender)
    require(acct != None and acct.active, "sender is not an active account")
    require(len(new_account) == KEY_BYTES, "account keys are 32 bytes")
    require(not (new_account in self.accounts), "new key is already registered")
    self.accounts[new_account] = Account(org=acct.org, roles=acct.roles, enc_key=acct.enc_key, active=True,
                                         registered_at=ctx.height, rotated_to=b"")
    acct.active = False
    acct.rotated_to = new_account
    self.accounts[ctx.sender] = acct
    emit(KeyRotated, account=ctx.sender, kind="signing", new_key=new_account)


@view
def has_role(account: bytes, role: str) -> bool:
    acct = self.accounts.get(account)
    if acct == None:
        return False
    return acct.active and role in acct.roles


@view
def is_active(account: bytes) -> bool:
    acct = self.accounts.get(account)
    if acct == None:
        return False
    return acct.active


@view
def get_account(account: bytes) -> any:
    return self.accounts.get(account)


@view
def is_org_admin(account: bytes, org_id: str) -> bool:
    return self.admin_of.get(account, "") == org_id


@view
def is_registered(account: bytes) -> bool:
    """Admission rule: an active account, or an organisation admin (who may hold no role)."""
    acct = self.accounts.get(account)
    if acct != None:
        return acct.active
    return account in self.admin_of
