"""Identity registry: organisations, accounts, roles, signing keys and X25519 encryption keys.

Organisations and their admin keys come from genesis (genesis_org / genesis_account,
callable only before seal()). Afterwards an organisation admin registers accounts of
its organisation, grants and revokes roles and revokes accounts; an account rotates
its own encryption key or its signing key. Every other contract asks has_role /
is_active before letting a sender act.

Accounts and keys: an account's id is stable, the 32-byte key it was registered
with; ``keys`` maps every signing key ever used to its account and the height it was
retired at (0 while it is the current key; transactions run at heights >= 1). The
node resolves a transaction's signing key through ``keys`` before anything else
(contracts_vm.system.resolve_signer) and runs the call with ctx.sender = the account
id, so every contract keeps storing and comparing account ids and a rotation moves
nothing: balances, escrow, orders, bonds, terms, tickets, points and passports stay
where they are and the new key drives them. A retired key is refused from the height
of its rotation. ``rotate_signing_key`` (by the account) and ``gov_recover_account``
(a passed governance proposal, for a lost key) both need a proof of possession: the
new key's signature over ``key_proof_message`` (so nobody moves an account to a key
they do not hold, or squats someone else's key). An organisation admin key that is
also an account's registration key keeps being the organisation's admin through the
account: admin_of is keyed by that id, so after a rotation the new key acts as admin.

Signing policies (a second factor): an account may require k of n+1 signatures (its
own current key plus up to MAX_COSIGNERS co-signer keys, each added with a proof of
possession over ``cosigner_proof_message``) for anything that moves more than
``spend_limit`` minor units out of its balance per ``window_ms`` of block time (0: per
transaction). A transaction carries co-signatures next to the sender's signature
(ledger.types, cstx/1); ``ctx.cosigners`` lists their keys, verified before
execution. The node's executor enforces the spend limit (node.core.spend: it reads
``policies`` directly and measures the balance around the call); this contract
enforces that changing or clearing the policy and rotating the account's keys need
the full threshold, so a thief holding one key can neither remove the second factor
nor move the account to a key of their own. A governance recovery (lost key) clears
the policy: the consortium replaces every factor at once, and the owner sets a new
policy with the recovered key.

After genesis the consortium itself changes only through the governance contract
(capability "governance"): gov_admit_org / gov_remove_org admit and remove
organisations, gov_set_platform_only_roles sets which roles only a platform
organisation admin may grant. Governance counts votes per organisation through
admin_org / active_org_count.
"""

#: The sender genesis uses; its private key is unknown (not a valid ed25519 point).
GENESIS_SENDER = b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
#: Signing and encryption keys are 32 bytes (ed25519 / X25519).
KEY_BYTES = 32
#: Most roles one account may hold (there are nine).
MAX_ROLES = 9
#: Most admin keys of one organisation.
MAX_ADMINS = 64
#: Most organisations ever admitted (removed ones keep their id).
MAX_ORGS = 64
#: Longest organisation id.
MAX_ORG_ID = 64
#: Domain tag of the proof of possession a new signing key gives (one purpose, one chain).
KEY_PROOF_DOMAIN = b"shopchain/account-key/v1|"
#: ed25519 signatures are 64 bytes.
SIGNATURE_BYTES = 64
#: Most co-signer keys in one signing policy (ledger.types.MAX_COSIGNATURES: a transaction
#: carries at most this many co-signatures, so a larger policy could never be satisfied).
MAX_COSIGNERS = 8
#: Longest spend window: a year of block time in milliseconds.
MAX_SPEND_WINDOW_MS = 31622400000
#: Domain tag of the proof of possession a co-signer key gives (distinct from KEY_PROOF_DOMAIN, so
#: agreeing to co-sign never doubles as consent to become the account's signing key).
COSIGNER_PROOF_DOMAIN = b"shopchain/cosigner-key/v1|"


class Org(Record):
    admins: list[bytes]
    active: bool


class Account(Record):
    org: str
    roles: list[str]
    enc_key: bytes
    active: bool
    registered_at: int
    signing_key: bytes
    rotated_at: int
    rotations: int


class KeyEntry(Record):
    account: bytes
    retired_at: int


class Policy(Record):
    cosigners: list[bytes]
    threshold: int
    spend_limit: int
    window_ms: int
    set_at: int


sealed: bool
platform_org: str
orgs: Map[str, Org]
admin_of: Map[bytes, str]
accounts: Map[bytes, Account]
keys: Map[bytes, KeyEntry]
policies: Map[bytes, Policy]
org_ids: list[str]
active_orgs: int
platform_only: list[str]


def _is_role(r) -> bool:
    return r in ["PLATFORM", "MERCHANT", "BUYER", "CARRIER", "SERVICE_CENTER", "ARBITER", "ISSUER", "TREASURY", "AUDITOR"]


def _platform_only(r) -> bool:
    """Roles only an admin of the platform organisation may grant (the role policy; set at seal, then by governance)."""
    policy = self.platform_only
    return policy != None and r in policy


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


def _new_org(org_id, admins) -> None:
    require(len(org_id) >= 1 and len(org_id) <= MAX_ORG_ID, "organisation ids are 1..64 characters")
    require(not (org_id in self.orgs), "organisation already exists: " + org_id)
    ids = self.org_ids
    if ids == None:
        ids = []
    require(len(ids) < MAX_ORGS, "at most 64 organisations")
    require(len(admins) >= 1 and len(admins) <= MAX_ADMINS, "expected 1..64 admin keys")
    for a in admins:
        require(len(a) == KEY_BYTES, "admin keys are 32 bytes")
        require(not (a in self.admin_of), "a key administers one organisation only")
        require(not (a in self.keys), "an admin key must not be a registered account's key")
        self.admin_of[a] = org_id
    self.orgs[org_id] = Org(admins=admins, active=True)
    ids.append(org_id)
    self.org_ids = ids
    self.active_orgs += 1


@public
def genesis_org(org_id: str, admins: list[bytes], is_platform: bool) -> None:
    _genesis_only()
    _new_org(org_id, admins)
    if is_platform:
        self.platform_org = org_id


@public
@requires("governance")
def gov_admit_org(org_id: str, admins: list[bytes]) -> None:
    """A new member organisation and its admin keys (a passed governance proposal)."""
    _new_org(org_id, admins)
    emit(OrgAdmitted, org=org_id, admins=admins)


@public
@requires("governance")
def gov_remove_org(org_id: str) -> None:
    """Deactivate an organisation: its admin keys stop being admins (its accounts stay as they are)."""
    org = self.orgs.get(org_id)
    require(org != None and org.active, "no active organisation " + org_id)
    require(org_id != self.platform_org, "the platform organisation cannot be removed")
    require(self.active_orgs > 1, "the last organisation cannot be removed")
    for a in org.admins:
        del self.admin_of[a]
    org.active = False
    self.orgs[org_id] = org
    self.active_orgs -= 1
    emit(OrgRemoved, org=org_id)


@public
@requires("governance")
def gov_set_platform_only_roles(roles: list[str]) -> None:
    """The role policy: which roles only an admin of the platform organisation may grant."""
    require(len(roles) <= MAX_ROLES, "expected at most 9 roles")
    seen = []
    for r in roles:
        require(_is_role(r), "unknown role " + r)
        require(not (r in seen), "role listed twice: " + r)
        seen.append(r)
    self.platform_only = roles
    emit(RolePolicyChanged, platform_only=roles)


@public
def genesis_account(account: bytes, org_id: str, roles: list[str], enc_key: bytes) -> None:
    _genesis_only()
    _add(account, org_id, roles, enc_key)


@public
def seal() -> None:
    _genesis_only()
    self.platform_only = ["PLATFORM", "TREASURY", "ARBITER", "AUDITOR"]
    self.sealed = True


def _add(account, org_id, roles, enc_key) -> None:
    require(len(account) == KEY_BYTES, "account keys are 32 bytes, found " + str(len(account)))
    require(org_id in self.orgs, "unknown organisation " + org_id)
    require(not (account in self.keys), "key 0x" + account.hex() + " is already an account's key (current or retired)")
    _check_roles(roles)
    _check_enc_key(enc_key)
    self.accounts[account] = Account(org=org_id, roles=roles, enc_key=enc_key, active=True,
                                     registered_at=ctx.height, signing_key=account, rotated_at=0, rotations=0)
    self.keys[account] = KeyEntry(account=account, retired_at=0)
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
    if acct == None and account in self.keys:
        revert("key 0x" + account.hex() + " signs for account 0x" + self.keys[account].account.hex()
               + "; name the account by its id")
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
    _require_threshold(ctx.sender, "rotating the encryption key")
    _check_enc_key(new_key)
    old_key = acct.enc_key
    acct.enc_key = new_key
    self.accounts[ctx.sender] = acct
    emit(KeyRotated, account=ctx.sender, kind="encryption", old_key=old_key, new_key=new_key, height=ctx.height)


def key_proof_message(account, new_key) -> bytes:
    """What a new signing key signs to show it is held by whoever moves ``account`` to it
    (contracts_vm.system.key_proof_message builds the same bytes for clients)."""
    return KEY_PROOF_DOMAIN + ctx.chain_id.encode() + b"|" + account + new_key


def _checked_key_change(account, new_key, proof) -> Account:
    """The account, once ``new_key`` is known to be free and held by whoever gave ``proof``."""
    acct = self.accounts.get(account)
    require(acct != None, "no account 0x" + account.hex())
    require(len(new_key) == KEY_BYTES, "signing keys are 32 bytes, found " + str(len(new_key)))
    require(not (new_key in self.keys), "key 0x" + new_key.hex() + " is already an account's key (current or retired)")
    require(not (new_key in self.admin_of), "key 0x" + new_key.hex() + " is an organisation admin key")
    require(len(proof) == SIGNATURE_BYTES, "the proof is a 64-byte signature, found " + str(len(proof)) + " bytes")
    require(ed25519_verify(new_key, key_proof_message(account, new_key), proof),
            "the proof is not the new key's signature of key_proof_message(account, new key) on this chain")
    return acct


def _set_signing_key(account, new_key, proof) -> bytes:
    """Retire the account's current key from this height and make ``new_key`` current; returns the old key."""
    acct = _checked_key_change(account, new_key, proof)
    old_key = acct.signing_key
    self.keys[old_key] = KeyEntry(account=account, retired_at=ctx.height)
    self.keys[new_key] = KeyEntry(account=account, retired_at=0)
    acct.signing_key = new_key
    acct.rotated_at = ctx.height
    acct.rotations += 1
    self.accounts[account] = acct
    return old_key


@public
def rotate_signing_key(new_key: bytes, proof: bytes) -> None:
    """The account moves to a new signing key; the old one is refused from this height.

    ``proof``: the new key's signature of key_proof_message(account id, new key).
    """
    acct = self.accounts.get(ctx.sender)
    require(acct != None and acct.active, "sender is not an active account")
    _require_threshold(ctx.sender, "rotating the signing key")
    policy = self.policies.get(ctx.sender)
    require(policy == None or not (new_key in policy.cosigners),
            "key 0x" + new_key.hex() + " is one of the account's co-signers; a key cannot count twice")
    old_key = _set_signing_key(ctx.sender, new_key, proof)
    emit(KeyRotated, account=ctx.sender, kind="signing", old_key=old_key, new_key=new_key, height=ctx.height)


@public
@requires("governance")
def gov_recover_account(account: bytes, new_key: bytes, proof: bytes) -> None:
    """A passed "recover_account" proposal: the account's key was lost; ``new_key`` replaces it."""
    old_key = _set_signing_key(account, new_key, proof)
    if account in self.policies:
        del self.policies[account]
        emit(SigningPolicyCleared, account=account, by="recovery", height=ctx.height)
    emit(AccountRecovered, account=account, old_key=old_key, new_key=new_key, height=ctx.height)


# ---- signing policies (k of n+1 signatures above a spend limit) ---------------------------

def cosigner_proof_message(account, key) -> bytes:
    """What a co-signer key signs to agree to co-sign for ``account`` on this chain
    (contracts_vm.system.cosigner_proof_message builds the same bytes for clients)."""
    return COSIGNER_PROOF_DOMAIN + ctx.chain_id.encode() + b"|" + account + key


def _approvals(account, policy) -> int:
    """Signatures approving this call for ``account``: its own key (it signed the transaction)
    plus the co-signatures from the policy's keys. Only a transaction's own call counts them:
    a contract calling in carries no signatures of the account."""
    if ctx.caller_contract != "" or ctx.origin != account:
        return 0
    n = 1
    for k in ctx.cosigners:
        if k in policy.cosigners:
            n += 1
    return n


def _require_threshold(account, what) -> None:
    """Revert unless the call carries the account's full threshold (no policy: one key is it)."""
    policy = self.policies.get(account)
    if policy == None:
        return
    have = _approvals(account, policy)
    require(have >= policy.threshold,
            what + " needs " + str(policy.threshold) + " of " + str(len(policy.cosigners) + 1)
            + " signatures (the account's key and its co-signers), found " + str(have))


@public
def set_signing_policy(cosigners: list[bytes], proofs: list[bytes], threshold: int, spend_limit: int,
                       window_ms: int) -> None:
    """Require ``threshold`` of (own key + ``cosigners``) signatures for spending above
    ``spend_limit`` per ``window_ms`` of block time (0: per transaction), and for changing
    the policy or rotating keys. ``proofs[i]``: cosigners[i]'s signature of
    cosigner_proof_message(account id, cosigners[i]). Replacing a policy needs its threshold."""
    account = ctx.sender
    acct = self.accounts.get(account)
    require(acct != None and acct.active, "sender is not an active account")
    _require_threshold(account, "changing the signing policy")
    n = len(cosigners)
    require(n >= 1 and n <= MAX_COSIGNERS, "expected 1.." + str(MAX_COSIGNERS) + " co-signer keys, found " + str(n))
    require(len(proofs) == n, "expected one proof per co-signer (" + str(n) + "), found " + str(len(proofs)))
    require(threshold >= 2 and threshold <= n + 1,
            "threshold counts the account's key and its co-signers: expected 2.." + str(n + 1) + ", found " + str(threshold))
    require(spend_limit >= 0, "spend limit must not be negative, found " + str(spend_limit))
    require(window_ms >= 0 and window_ms <= MAX_SPEND_WINDOW_MS,
            "spend window must be 0.." + str(MAX_SPEND_WINDOW_MS) + " ms, found " + str(window_ms))
    seen = []
    i = 0
    for k in cosigners:
        require(len(k) == KEY_BYTES, "co-signer keys are 32 bytes, found " + str(len(k)))
        require(not (k in seen), "co-signer 0x" + k.hex() + " listed twice")
        require(k != acct.signing_key, "the account's own signing key cannot be its co-signer")
        require(not (k in self.keys and self.keys[k].account == account),
                "key 0x" + k.hex() + " is a retired signing key of this account; a co-signer is another key")
        require(len(proofs[i]) == SIGNATURE_BYTES, "proof " + str(i) + " is not a 64-byte signature")
        require(ed25519_verify(k, cosigner_proof_message(account, k), proofs[i]),
                "proof " + str(i) + " is not co-signer 0x" + k.hex() + "'s signature of cosigner_proof_message(account, key) on this chain")
        seen.append(k)
        i += 1
    self.policies[account] = Policy(cosigners=cosigners, threshold=threshold, spend_limit=spend_limit,
                                    window_ms=window_ms, set_at=ctx.height)
    emit(SigningPolicySet, account=account, cosigners=cosigners, threshold=threshold, spend_limit=spend_limit,
         window_ms=window_ms, height=ctx.height)


@public
def clear_signing_policy() -> None:
    """Back to one key for everything; needs the policy's threshold."""
    account = ctx.sender
    require(account in self.policies, "account 0x" + account.hex() + " has no signing policy")
    _require_threshold(account, "clearing the signing policy")
    del self.policies[account]
    emit(SigningPolicyCleared, account=account, by="account", height=ctx.height)


@view
def signing_policy(account: bytes) -> any:
    """The account's Policy record, or None (one key suffices for everything)."""
    return self.policies.get(account)


@view
def account_of(key: bytes) -> any:
    """[account id, current signing key, height the key was retired at (0: current)] for a
    signing key an account ever used, or None (organisation admin keys that are no account, strangers)."""
    e = self.keys.get(key)
    if e == None:
        return None
    return [e.account, self.accounts[e.account].signing_key, e.retired_at]


@view
def check_key_change(account: bytes, new_key: bytes, proof: bytes) -> bool:
    """Would ``account`` move to ``new_key`` with ``proof``? Reverts saying why not (governance
    checks a recovery proposal with it when it is made, not only when it executes)."""
    _checked_key_change(account, new_key, proof)
    return True


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
def is_registered(key: bytes) -> bool:
    """Admission rule for a signing key: the current key of an active account, or an
    organisation admin key that is no account's key (admins may hold no role)."""
    e = self.keys.get(key)
    if e != None:
        return e.retired_at == 0 and self.accounts[e.account].active
    return key in self.admin_of


@view
def is_member(account: bytes) -> bool:
    """An account id of an active account, or an organisation admin key: who may receive fees."""
    acct = self.accounts.get(account)
    if acct != None:
        return acct.active
    return account in self.admin_of


@view
def admin_org(account: bytes) -> str:
    """The active organisation ``account`` is an admin key of, or "" (governance's voter check)."""
    org = self.admin_of.get(account, "")
    if org == "" or not self.orgs[org].active:
        return ""
    return org


@view
def is_org_active(org_id: str) -> bool:
    org = self.orgs.get(org_id)
    return org != None and org.active


@view
def active_org_count() -> int:
    return self.active_orgs


@view
def list_orgs() -> list:
    """[org id, active, admin keys] of every organisation ever admitted, in admission order."""
    out = []
    ids = self.org_ids
    if ids == None:
        return out
    for org_id in ids:
        org = self.orgs[org_id]
        out.append([org_id, org.active, org.admins])
    return out


@view
def platform_only_roles() -> list[str]:
    return self.platform_only
