"""Governance: the member organisations vote on every change no single key may make.

How it works: an active admin key of an organisation proposes a change
(``propose(kind, args, description)``); each organisation votes once, through any of
its active admin keys (identity's ``admin_org``). When the yes votes of active
organisations reach the threshold (default ceil(2/3) of the active organisations,
the fraction ``threshold_num / threshold_den`` is itself a setting) the proposal has
passed; after the timelock (``timelock_s`` seconds of block time, ``ctx.timestamp_ms``)
anyone may ``execute`` it, once, within ``voting_period_s`` more seconds. A proposal
not passed within ``voting_period_s`` of its creation expires. The contract itself
carries out what passed:

    kind               args                                        effect
    code               [deploy payload]                            install_code (deploy/upgrade; code hash and ABI shown)
    settings           [contract, {setting: value}]                contract.gov_configure (or this contract's own)
    admit_org          [org id, [admin keys]]                      identity.gov_admit_org
    remove_org         [org id]                                    identity.gov_remove_org
    role_policy        [[roles only the platform org grants]]      identity.gov_set_platform_only_roles
    fees               [gas_price, byte_price, collector]          set_fee_schedule (ledger/fees.py)
    add_validator      [key, name, organisation, p2p, rpc]         schedules a validator set with the key appended
    remove_validator   [key]                                       schedules the set without it
    rotate_validator   [old, new key(, p2p, rpc)]                  schedules the set with old replaced in place
    recover_account    [account id, new key, proof]                identity.gov_recover_account (a lost key)
    currency           [code, name, decimals, issuer]              ledger.gov_create_currency

A "recover_account" proposal may only be made by an admin of the account's own
organisation (it knows the holder and vouches for the request; if that organisation
is no longer active, by any member) and is then voted like any other: no single
organisation can move an account, and the funds with it, to a key of its choosing.
``proof`` is the new key's signature of identity's key_proof_message(account, new
key), checked when proposed and again when executed.

Validator sets: ``schedule`` holds every set ever scheduled, by index, each with its
activation height; the node reads it directly (contracts_vm.system.validator_schedule).
A change executed at height h activates at max(h + activation_delay, latest + 1) and
applies on top of the latest scheduled set. ``directory`` describes every validator
ever scheduled. Genesis loads its validators at height 1 (genesis_* calls, then seal).
Every proposal, vote, pass, execution, expiry and cancellation is an event.
"""

GENESIS_SENDER = b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
KEY_BYTES = 32
#: Proposals open (voting or passed, not yet executed) at one time.
MAX_OPEN_PROPOSALS = 32
#: Longest proposal description (characters).
MAX_DESCRIPTION = 2000
#: Largest deploy payload a proposal may carry (the VM's largest bytes value).
MAX_PAYLOAD_BYTES = 65536
#: Most settings one "settings" proposal changes.
MAX_SETTING_CHANGES = 16
#: Most proposals one list_proposals call returns.
MAX_LIST = 50
#: Largest validator set (ledger.types.MAX_VALIDATORS; a test keeps them equal).
MAX_VALIDATORS = 256
#: Longest validator name and network address.
MAX_NAME = 64
MAX_ADDRESS = 256
#: Bounds of the settings.
MAX_THRESHOLD_DEN = 100
MAX_TIMELOCK_S = 7776000
MIN_VOTING_PERIOD_S = 60
MAX_VOTING_PERIOD_S = 7776000
MIN_ACTIVATION_DELAY = 2
MAX_ACTIVATION_DELAY = 1000000


class Proposal(Record):
    id: int
    kind: str
    args: list
    description: str
    proposer: bytes
    proposer_org: str
    created_height: int
    created_ms: int
    voting_ends_ms: int
    state: str
    yes: list[str]
    no: list[str]
    passed_ms: int
    executable_ms: int
    execute_by_ms: int
    executed_height: int
    code: any


class Validator(Record):
    name: str
    organisation: str
    p2p_address: str
    rpc_address: str


class ScheduledSet(Record):
    height: int
    keys: list[bytes]


sealed: bool
threshold_num: int
threshold_den: int
timelock_s: int
voting_period_s: int
activation_delay: int
next_id: int
open_ids: list[int]
proposals: Map[int, Proposal]
schedule: Map[int, ScheduledSet]
schedule_count: int
directory: Map[bytes, Validator]
directory_keys: Map[int, bytes]
directory_count: int


# ---- genesis ------------------------------------------------------------------------

def _genesis_only() -> None:
    require(ctx.sender == GENESIS_SENDER, "only genesis may call this")
    require(not self.sealed, "genesis is sealed")


@public
def genesis_configure(threshold_num: int, threshold_den: int, timelock_s: int, voting_period_s: int,
                      activation_delay: int) -> None:
    _genesis_only()
    _apply_own({"threshold_num": threshold_num, "threshold_den": threshold_den, "timelock_s": timelock_s,
                "voting_period_s": voting_period_s, "activation_delay": activation_delay})


@public
def genesis_validator(key: bytes, name: str, organisation: str, p2p_address: str, rpc_address: str) -> None:
    """Append a genesis validator to the set in force from height 1 (genesis order)."""
    _genesis_only()
    keys = []
    if self.schedule_count == 1:
        keys = self.schedule[0].keys
    _check_validator(key, name, p2p_address, rpc_address)
    require(not (key in keys), "validator key listed twice")
    require(len(keys) < MAX_VALIDATORS, "at most 256 validators")
    keys.append(key)
    self.schedule[0] = ScheduledSet(height=1, keys=keys)
    self.schedule_count = 1
    _record_validator(key, Validator(name=name, organisation=organisation, p2p_address=p2p_address,
                                     rpc_address=rpc_address))


@public
def seal() -> None:
    _genesis_only()
    require(self.threshold_den > 0, "genesis must configure governance before sealing")
    self.sealed = True


# ---- settings -----------------------------------------------------------------------

def _apply_own(changes) -> None:
    for k in changes:
        require(k in ["threshold_num", "threshold_den", "timelock_s", "voting_period_s", "activation_delay"],
                "unknown governance setting " + k
                + "; expected one of threshold_num, threshold_den, timelock_s, voting_period_s, activation_delay")
    num = changes.get("threshold_num", self.threshold_num)
    den = changes.get("threshold_den", self.threshold_den)
    timelock = changes.get("timelock_s", self.timelock_s)
    period = changes.get("voting_period_s", self.voting_period_s)
    delay = changes.get("activation_delay", self.activation_delay)
    require(den >= 1 and den <= MAX_THRESHOLD_DEN, "threshold_den must be 1..100, found " + str(den))
    require(num <= den and 2 * num > den,
            "the threshold num/den must be more than half and at most all, found " + str(num) + "/" + str(den))
    require(timelock >= 0 and timelock <= MAX_TIMELOCK_S, "timelock_s must be 0..7776000 seconds, found " + str(timelock))
    require(period >= MIN_VOTING_PERIOD_S and period <= MAX_VOTING_PERIOD_S,
            "voting_period_s must be 60..7776000 seconds, found " + str(period))
    require(delay >= MIN_ACTIVATION_DELAY and delay <= MAX_ACTIVATION_DELAY,
            "activation_delay must be 2..1000000 blocks, found " + str(delay))
    self.threshold_num = num
    self.threshold_den = den
    self.timelock_s = timelock
    self.voting_period_s = period
    self.activation_delay = delay


def _required(active) -> int:
    """Yes votes needed among ``active`` organisations: ceil(active * num / den), at least 1."""
    return max(1, (active * self.threshold_num + self.threshold_den - 1) // self.threshold_den)


# ---- proposals ----------------------------------------------------------------------

def _voter_org(who) -> str:
    org = call("identity", "admin_org", who)
    require(org != "", "sender is not an admin key of an active organisation")
    return org


def _open() -> list:
    ids = self.open_ids
    if ids == None:
        return []
    return ids


def _due(p) -> bool:
    if p.state == "open":
        return ctx.timestamp_ms >= p.voting_ends_ms
    if p.state == "passed":
        return ctx.timestamp_ms >= p.execute_by_ms
    return False


def _close(pid) -> None:
    kept = []
    for i in _open():
        if i != pid:
            kept.append(i)
    self.open_ids = kept


def _expire(p) -> None:
    p.state = "expired"
    self.proposals[p.id] = p
    _close(p.id)
    emit(ProposalExpired, id=p.id, kind=p.kind)


def _sweep() -> None:
    for pid in _open():
        p = self.proposals[pid]
        if _due(p):
            _expire(p)


def _load(pid) -> Proposal:
    p = self.proposals.get(pid)
    require(p != None, "no proposal " + str(pid))
    return p


def _check_key(k, what) -> None:
    require(len(k) == KEY_BYTES, what + " must be a 32-byte key, found " + str(len(k)) + " bytes")


def _check_validator(key, name, p2p_address, rpc_address) -> None:
    _check_key(key, "a validator key")
    require(len(name) >= 1 and len(name) <= MAX_NAME, "validator names are 1..64 characters")
    require(len(p2p_address) >= 1 and len(p2p_address) <= MAX_ADDRESS, "p2p_address must be 1..256 characters")
    require(len(rpc_address) <= MAX_ADDRESS, "rpc_address must be at most 256 characters")


def _nargs(args, n, shape) -> None:
    require(len(args) == n, "expected args " + shape + ", found " + str(len(args)) + " values")


def _check_proposal(kind, args) -> any:
    """Check a proposal's arguments now (clear messages early); returns the code summary for "code"."""
    if kind == "code":
        _nargs(args, 1, "[deploy payload]")
        payload = args[0]
        require(len(payload) >= 1 and len(payload) <= MAX_PAYLOAD_BYTES, "deploy payloads are 1..65536 bytes")
        summary = inspect_code(payload)
        summary["payload_hash"] = sha256(payload)
        return summary
    if kind == "settings":
        _nargs(args, 2, "[contract, {setting: value}]")
        changes = args[1]
        require(len(changes) >= 1 and len(changes) <= MAX_SETTING_CHANGES, "a settings proposal changes 1..16 settings")
        if args[0] == "governance":
            _check_own(changes)
        else:
            require(len(args[0]) >= 1, "name the contract whose settings change")
        return None
    if kind == "admit_org":
        _nargs(args, 2, "[organisation id, [admin keys]]")
        require(not call("identity", "is_org_active", args[0]), "organisation " + args[0] + " is already a member")
        require(len(args[1]) >= 1, "a new organisation needs at least one admin key")
        for a in args[1]:
            _check_key(a, "an admin key")
        return None
    if kind == "remove_org":
        _nargs(args, 1, "[organisation id]")
        require(call("identity", "is_org_active", args[0]), "no active organisation " + args[0])
        return None
    if kind == "role_policy":
        _nargs(args, 1, "[[roles only the platform organisation may grant]]")
        return None
    if kind == "fees":
        _nargs(args, 3, "[gas_price, byte_price, collector]")
        require(args[0] >= 0 and args[1] >= 0, "fee prices must not be negative")
        _check_key(args[2], "the fee collector")
        return None
    if kind == "add_validator":
        _nargs(args, 5, "[key, name, organisation, p2p_address, rpc_address]")
        _check_validator(args[0], args[1], args[3], args[4])
        require(call("identity", "is_org_active", args[2]), "no active organisation " + args[2])
        _added(_latest(), args[0])
        return None
    if kind == "remove_validator":
        _nargs(args, 1, "[key]")
        _removed(_latest(), args[0])
        return None
    if kind == "rotate_validator":
        require(len(args) == 2 or len(args) == 4, "expected args [old key, new key] or [old key, new key, "
                + "p2p_address, rpc_address], found " + str(len(args)) + " values")
        _check_key(args[1], "the new validator key")
        if len(args) == 4:
            _check_validator(args[1], "rotated", args[2], args[3])
        _rotated(_latest(), args[0], args[1])
        return None
    if kind == "recover_account":
        _nargs(args, 3, "[account id, new key, proof]")
        _check_recovery(args[0])
        call("identity", "check_key_change", args[0], args[1], args[2])
        return None
    if kind == "currency":
        _nargs(args, 4, "[code, name, decimals, issuer]")
        require(args[2] >= 0 and args[2] <= 18, "decimals must be 0..18, found " + str(args[2]))
        require(call("identity", "is_active", args[3]), "the issuer must be an active account")
        require(call("ledger", "get_currency", args[0]) == None, "currency " + args[0] + " exists already")
        return None
    revert("unknown proposal kind " + kind + "; expected one of code, settings, admit_org, remove_org, role_policy, "
           + "fees, add_validator, remove_validator, rotate_validator, recover_account, currency")
    return None


def _check_recovery(account) -> None:
    """Only the account's own organisation asks for its recovery (any member once that one is gone)."""
    acct = call("identity", "get_account", account)
    require(acct != None, "no account 0x" + account.hex())
    org = acct["org"]
    if call("identity", "is_org_active", org):
        require(call("identity", "admin_org", ctx.sender) == org,
                "only an admin of organisation " + org + " (the account's) may propose its recovery")


def _check_own(changes) -> None:
    """Validate a change of this contract's settings without keeping it."""
    saved = [self.threshold_num, self.threshold_den, self.timelock_s, self.voting_period_s, self.activation_delay]
    _apply_own(changes)
    self.threshold_num = saved[0]
    self.threshold_den = saved[1]
    self.timelock_s = saved[2]
    self.voting_period_s = saved[3]
    self.activation_delay = saved[4]


@public
def propose(kind: str, args: list, description: str) -> int:
    """A new proposal by an active organisation admin; returns its id. Voting starts now."""
    org = _voter_org(ctx.sender)
    require(len(description) <= MAX_DESCRIPTION, "descriptions are at most 2000 characters, found " + str(len(description)))
    _sweep()
    ids = _open()
    require(len(ids) < MAX_OPEN_PROPOSALS, "32 proposals are open already; execute, cancel or let some expire")
    code = _check_proposal(kind, args)
    stored = args
    if kind == "code":
        stored = []          # the payload is supplied again at execution; its hash and summary are kept
    pid = self.next_id
    self.next_id = pid + 1
    ends = ctx.timestamp_ms + self.voting_period_s * 1000
    self.proposals[pid] = Proposal(id=pid, kind=kind, args=stored, description=description, proposer=ctx.sender,
                                   proposer_org=org, created_height=ctx.height, created_ms=ctx.timestamp_ms,
                                   voting_ends_ms=ends, state="open", yes=[], no=[], passed_ms=0,
                                   executable_ms=0, execute_by_ms=0, executed_height=0, code=code)
    ids.append(pid)
    self.open_ids = ids
    details = args
    if kind == "code":
        details = [code["action"], code["name"], code["code_hash"], code["capabilities"]]
    emit(ProposalCreated, id=pid, kind=kind, proposer=ctx.sender, org=org, description=description,
         voting_ends_ms=ends, details=details)
    return pid


def _tally(p) -> int:
    """Yes votes of organisations that are still active."""
    n = 0
    for org in p.yes:
        if call("identity", "is_org_active", org):
            n += 1
    return n


@public
def vote(id: int, yes: bool) -> str:
    """One vote per organisation, by any of its active admin keys; returns the proposal's state."""
    org = _voter_org(ctx.sender)
    p = _load(id)
    require(p.state == "open", "proposal " + str(id) + " is " + p.state + ", not open for votes")
    require(ctx.timestamp_ms < p.voting_ends_ms,
            "voting on proposal " + str(id) + " ended at " + str(p.voting_ends_ms) + " ms; it has expired")
    require(not (org in p.yes) and not (org in p.no), "organisation " + org + " has already voted on proposal " + str(id))
    if yes:
        p.yes.append(org)
    else:
        p.no.append(org)
    count = _tally(p)
    needed = _required(call("identity", "active_org_count"))
    emit(Voted, id=id, org=org, voter=ctx.sender, yes=yes, yes_votes=count, required=needed)
    if count >= needed:
        p.state = "passed"
        p.passed_ms = ctx.timestamp_ms
        p.executable_ms = ctx.timestamp_ms + self.timelock_s * 1000
        p.execute_by_ms = p.executable_ms + self.voting_period_s * 1000
        emit(ProposalPassed, id=id, yes_votes=count, required=needed, executable_ms=p.executable_ms,
             execute_by_ms=p.execute_by_ms)
    self.proposals[id] = p
    return p.state


@public
def execute(id: int, payload: bytes) -> None:
    """Carry out a passed proposal after its timelock, once (anyone may). ``payload``: the deploy
    payload of a "code" proposal (its hash must be the one proposed), b"" for the other kinds."""
    p = _load(id)
    require(p.state == "passed", "proposal " + str(id) + " is " + p.state + "; only a passed proposal executes")
    require(ctx.timestamp_ms >= p.executable_ms, "proposal " + str(id) + " is timelocked until " + str(p.executable_ms)
            + " ms of block time; the block's time is " + str(ctx.timestamp_ms))
    require(ctx.timestamp_ms < p.execute_by_ms,
            "the execution window of proposal " + str(id) + " ended at " + str(p.execute_by_ms) + " ms; it has expired")
    count = _tally(p)
    needed = _required(call("identity", "active_org_count"))
    require(count >= needed, "proposal " + str(id) + " has " + str(count) + " yes votes of active organisations, "
            + str(needed) + " needed (organisations were removed since it passed)")
    p.state = "executed"
    p.executed_height = ctx.height
    self.proposals[id] = p
    _close(id)
    _perform(p, payload)
    emit(ProposalExecuted, id=id, kind=p.kind, height=ctx.height)


@public
def expire(id: int) -> None:
    """Mark a proposal whose voting period or execution window has ended as expired (anyone may)."""
    p = _load(id)
    require(_due(p), "proposal " + str(id) + " is " + p.state + " and has not run out of time")
    _expire(p)


@public
def cancel(id: int) -> None:
    """The proposer withdraws a proposal nobody has voted on yet."""
    p = _load(id)
    require(ctx.sender == p.proposer, "only the proposer may cancel proposal " + str(id))
    require(p.state == "open", "proposal " + str(id) + " is " + p.state + ", not open")
    require(len(p.yes) + len(p.no) == 0, "proposal " + str(id) + " has votes; it can no longer be cancelled")
    p.state = "cancelled"
    self.proposals[id] = p
    _close(id)
    emit(ProposalCancelled, id=id)


# ---- execution ----------------------------------------------------------------------

def _perform(p, payload) -> None:
    kind = p.kind
    args = p.args
    if kind == "code":
        require(len(payload) >= 1, "a code proposal executes with its deploy payload")
        shown = p.code
        got = inspect_code(payload)
        require(got["code_hash"] == shown["code_hash"], "the payload installs code hash 0x" + got["code_hash"].hex()
                + ", proposal " + str(p.id) + " shows 0x" + shown["code_hash"].hex())
        require(sha256(payload) == shown["payload_hash"],
                "the payload differs from the one proposed (name, action, capabilities or init arguments)")
        install_code(payload)
    elif kind == "settings":
        if args[0] == "governance":
            _apply_own(args[1])
            emit(SettingsChanged, changes=args[1])
        else:
            call(args[0], "gov_configure", args[1])
    elif kind == "admit_org":
        call("identity", "gov_admit_org", args[0], args[1])
    elif kind == "remove_org":
        call("identity", "gov_remove_org", args[0])
    elif kind == "role_policy":
        call("identity", "gov_set_platform_only_roles", args[0])
    elif kind == "fees":
        require(call("identity", "is_member", args[2]), "the fee collector is not an active account or admin key")
        set_fee_schedule(args[0], args[1], args[2])
        emit(FeesChanged, gas_price=args[0], byte_price=args[1], collector=args[2])
    elif kind == "add_validator":
        require(call("identity", "is_org_active", args[2]), "no active organisation " + args[2])
        keys = _added(_latest(), args[0])
        _record_validator(args[0], Validator(name=args[1], organisation=args[2], p2p_address=args[3],
                                             rpc_address=args[4]))
        _schedule_set(keys)
    elif kind == "remove_validator":
        _schedule_set(_removed(_latest(), args[0]))
    elif kind == "rotate_validator":
        keys = _rotated(_latest(), args[0], args[1])
        v = self.directory[args[0]]
        if len(args) == 4:  # the new key runs on another machine
            v = Validator(name=v.name, organisation=v.organisation, p2p_address=args[2], rpc_address=args[3])
        _record_validator(args[1], v)
        _schedule_set(keys)
    elif kind == "recover_account":
        call("identity", "gov_recover_account", args[0], args[1], args[2])
    elif kind == "currency":
        call("ledger", "gov_create_currency", args[0], args[1], args[2], args[3])


# ---- validator schedule -------------------------------------------------------------

def _latest() -> list:
    n = self.schedule_count
    if n == 0:
        return []
    return self.schedule[n - 1].keys


def _added(keys, key) -> list:
    _check_key(key, "a validator key")
    require(not (key in keys), "validator 0x" + key.hex() + " is already in the latest validator set")
    require(len(keys) < MAX_VALIDATORS, "the validator set would exceed 256 validators")
    out = keys + [key]
    return out


def _removed(keys, key) -> list:
    require(key in keys, "validator 0x" + key.hex() + " is not in the latest validator set")
    require(len(keys) > 1, "the validator set would be empty")
    out = []
    for k in keys:
        if k != key:
            out.append(k)
    return out


def _rotated(keys, old, new) -> list:
    require(old in keys, "validator 0x" + old.hex() + " is not in the latest validator set")
    require(not (new in keys), "validator 0x" + new.hex() + " is already in the latest validator set")
    out = []
    for k in keys:
        if k == old:
            out.append(new)
        else:
            out.append(k)
    return out


def _record_validator(key, v) -> None:
    if not (key in self.directory):
        n = self.directory_count
        self.directory_keys[n] = key
        self.directory_count = n + 1
    self.directory[key] = v


def _schedule_set(keys) -> None:
    """Schedule ``keys`` at max(height + activation_delay, latest scheduled + 1)."""
    require(len(keys) >= 1 and len(keys) <= MAX_VALIDATORS, "a validator set has 1..256 validators")
    n = self.schedule_count
    at = ctx.height + self.activation_delay
    if n > 0:
        at = max(at, self.schedule[n - 1].height + 1)
    self.schedule[n] = ScheduledSet(height=at, keys=keys)
    self.schedule_count = n + 1
    emit(ValidatorSetScheduled, activation_height=at, validators=keys)


# ---- views --------------------------------------------------------------------------

@view
def get_proposal(id: int) -> any:
    return self.proposals.get(id)


@view
def proposal_count() -> int:
    """Proposals ever made (ids run 0 .. count - 1)."""
    return self.next_id


@view
def list_proposals(from_id: int, count: int) -> list:
    require(count >= 0 and count <= MAX_LIST, "count must be 0..50")
    out = []
    i = max(from_id, 0)
    while i < self.next_id and len(out) < count:
        out.append(self.proposals[i])
        i += 1
    return out


@view
def get_settings() -> dict:
    return {"threshold_num": self.threshold_num, "threshold_den": self.threshold_den, "timelock_s": self.timelock_s,
            "voting_period_s": self.voting_period_s, "activation_delay": self.activation_delay}


@view
def required_votes() -> int:
    """Yes votes a proposal needs now (of the active organisations)."""
    return _required(call("identity", "active_org_count"))


@view
def schedule_length() -> int:
    return self.schedule_count


@view
def get_schedule(from_index: int, count: int) -> list:
    """[[activation height, [keys]], ...] from ``from_index`` on (at most 50)."""
    require(count >= 0 and count <= MAX_LIST, "count must be 0..50")
    out = []
    i = max(from_index, 0)
    while i < self.schedule_count and len(out) < count:
        s = self.schedule[i]
        out.append([s.height, s.keys])
        i += 1
    return out


@view
def get_validator(key: bytes) -> any:
    return self.directory.get(key)


@view
def validators_at(height: int) -> list[bytes]:
    """The set in force at ``height``: the last scheduled set whose activation height is at most it."""
    i = self.schedule_count - 1
    while i >= 0:
        s = self.schedule[i]
        if s.height <= height:
            return s.keys
        i -= 1
    return []
