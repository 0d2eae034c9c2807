"""The explorer's governance pages over a real node core whose chain went through real proposals.

The chain is made by the real-core simulator (tests/sim, NodeCore on every instance, simulated
clock): organisation admins sign governance transactions, the validators order and execute
them, and the story leaves one proposal in each state a consortium meets: a validator added
(executed, with its activation height and the new set signing after it), a code proposal still
open (its code hash shown), a settings change executed, a proposal expired, one cancelled and a
validator rotation passed but waiting out its timelock. Node 0's chain is then served the way
a node serves it (node.reads.NodeReads -> the RPC route table -> the explorer's routes).

The first test reads through the RPC dispatcher what the pages read; the browser test opens
the pages in headless Chromium (Debian's chromium and chromium-driver, skipped without them,
like tests/integration/test_explorer_browser.py) at desktop and phone width and checks what a
person sees: states, votes, execution, arguments by name, the schedule of validator sets, the
governance events on transaction pages named and linked rather than shown as bytes, a clear
message for an unknown proposal id, and no horizontal overflow at 390 px.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from dataclasses import dataclass, field

import pytest

from contracts_vm.compiler import compile_source
from contracts_vm.deploy import encode_deploy, make_deploy
from devnet.genesis import ADMINS
from ledger.errors import ChainError
from ledger.types import SignedTx, TxBody
from node.core.executor import call_view
from node.reads import NodeReads
from node.rpc.explorer import add_explorer_routes
from node.rpc.jsonrpc import CallContext
from node.rpc.methods import make_routes
from node.rpc.server import RpcServer
from tests.sim.cluster import HEALED, Simulation
from tests.sim.corenode import account_key
from tests.sim.scenarios import Scenario
from tests.integration.test_explorer_browser import browser

#: The headless-Chromium fixture (skips without chromium, chromium-driver, selenium), shared
#: with the end-to-end explorer test; importing it is what makes pytest offer it here.
SHARED_FIXTURES = (browser,)

#: Organisations that vote yes: 4 of the devnet's 6 is the 2/3 threshold.
VOTERS = ("platform", "acme", "globex", "swiftship")
#: Longest wait for one step of the story, in simulator ticks (50 ms of block time each).
MAX_TICKS = 4000
GAS = 2_000_000
COUNTER = """
count: int

@public
def bump(by: int) -> int:
    self.count += by
    return self.count
"""


@dataclass
class Story:
    """What the governance story did: proposal ids by name, tx ids, the new validator's activation."""

    sim: Simulation
    ids: dict[str, int] = field(default_factory=dict)
    txs: dict[str, str] = field(default_factory=dict)
    heights: dict[str, int] = field(default_factory=dict)
    code_hash: str = ""
    activation: int = 0
    spare: str = ""


class Governance:
    """Signs governance calls as the organisations' admins and waits for each to commit, successfully."""

    def __init__(self, sim: Simulation) -> None:
        self.sim, self.nonces = sim, {}
        self.chain = sim.nodes[0].core.chain

    def send(self, org: str, method: str, args: list) -> tuple[str, object]:
        key = account_key(ADMINS[org])
        nonce = self.nonces.get(org, 0)
        self.nonces[org] = nonce + 1
        signed: SignedTx = TxBody(self.sim.chain_id, key.public_key, nonce, "governance", method, args, GAS).sign(key)
        raw = signed.encode()
        self.sim.nodes[0].core.mempool.admit(raw, float(self.sim.now))  # a refusal fails the test, saying why
        for node in self.sim.nodes[1:]:
            node.admit(raw)
        self.run_until(lambda: self.chain.blocks.get_receipt(signed.tx_id) is not None, f"{org}'s {method} to commit")
        receipt, height, _ = self.chain.blocks.get_receipt(signed.tx_id)
        assert receipt.status == 0, f"{org}'s governance.{method} failed: {receipt.error}"
        return "0x" + signed.tx_id.hex(), (height, receipt.return_value)

    def run_until(self, done, what: str) -> None:
        start = self.sim.now
        while not done():
            self.sim.tick_once()
            assert not self.sim.violations, self.sim.violations[:3]
            assert self.sim.now - start < MAX_TICKS, f"{what}: not within {MAX_TICKS} ticks"

    def view(self, method: str, *args):
        result = call_view(self.chain.state, "governance", method, list(args), self.chain.height, self.sim.chain_id)
        assert result.ok, result.error_message
        return result.return_value

    def wait_ms(self, ms: int, what: str) -> None:
        until = self.sim.nodes[0].clock_ms() + ms
        self.run_until(lambda: self.sim.nodes[0].clock_ms() > until, what)

    def propose(self, org: str, kind: str, args: list, description: str) -> tuple[int, str]:
        tx, (_, pid) = self.send(org, "propose", [kind, args, description])
        return pid, tx

    def pass_(self, pid: int) -> list[str]:
        return [self.send(org, "vote", [pid, True])[0] for org in VOTERS]

    def execute(self, pid: int, payload: bytes = b"") -> tuple[str, int]:
        ready = self.view("get_proposal", pid)["executable_ms"]
        self.run_until(lambda: self.sim.nodes[0].clock_ms() > ready + 1_000, "the timelock")
        tx, (height, _) = self.send("acme", "execute", [pid, payload])
        return tx, height


def run_story() -> Story:
    sim = Simulation(17, 4, real_core=True, scenario=Scenario(HEALED, [], heal_tick=1, spares=2))
    gov, story = Governance(sim), Story(sim)
    genesis = list(sim.validators)
    spare, successor = (k.public_key for k in sim.spare_keys)
    story.spare = "0x" + spare.hex()

    # 0: a validator added: one organisation against, four for, executed after the timelock.
    pid, story.txs["add_propose"] = gov.propose("platform", "add_validator",
                                                [spare, "spare", "fixit", "127.0.0.1:26090", "127.0.0.1:27090"],
                                                "Fixit runs a fifth validator")
    story.ids["add"] = pid
    story.txs["add_no"] = gov.send("fairplay", "vote", [pid, False])[0]
    story.txs["add_yes"] = gov.pass_(pid)[0]
    story.txs["add_execute"], story.heights["add_execute"] = gov.execute(pid)
    schedule = gov.chain.schedule()
    story.activation = schedule.entries[-1][0]
    # The simulator's checkers judge certificates by its own schedule: tell it what the test expects.
    sim.schedule = sim.schedule.then(story.activation, genesis + [spare])
    gov.run_until(lambda: min(n.committed_height for n in sim.nodes) >= story.activation + 3, "blocks after activation")

    # 1: a contract deploy, still open: one for, one against.
    deploy = make_deploy("deploy", "counter", compile_source(COUNTER).code)
    story.code_hash = "0x" + deploy.code_hash.hex()
    story.ids["code"], story.txs["code_propose"] = gov.propose("acme", "code", [encode_deploy(deploy)], "A counter contract")
    gov.send("platform", "vote", [story.ids["code"], True])
    gov.send("fixit", "vote", [story.ids["code"], False])

    # 2: governance's own voting period shortened to a minute, executed.
    story.ids["settings"], _ = gov.propose("globex", "settings", ["governance", {"voting_period_s": 60}], "Faster votes")
    gov.pass_(story.ids["settings"])
    gov.execute(story.ids["settings"])

    # 3: a proposal nobody voted for within the (now one-minute) voting period, marked expired.
    story.ids["expired"], _ = gov.propose("platform", "remove_org", ["fairplay"], "Remove Fairplay")
    gov.wait_ms(61_000, "the voting period")
    story.txs["expire"] = gov.send("swiftship", "expire", [story.ids["expired"]])[0]

    # 4: withdrawn by its proposer before any vote.
    story.ids["cancelled"], _ = gov.propose("globex", "admit_org", ["newco", [account_key("newco-admin").public_key]],
                                            "Admit Newco")
    gov.send("globex", "cancel", [story.ids["cancelled"]])

    # 5: a validator key rotation that passed and waits out its timelock.
    story.ids["rotate"], _ = gov.propose("swiftship", "rotate_validator", [genesis[2], successor], "New key for node2")
    gov.pass_(story.ids["rotate"])
    return story


async def _refuse(raw: bytes) -> SignedTx:
    raise ChainError("this test node serves its chain read-only; it accepts no transactions")


def serve(sim: Simulation) -> RpcServer:
    """Node 0's chain as a node serves it: NodeReads, the route table, the explorer's routes."""
    node = sim.nodes[0]
    core = node.core
    def connected() -> list[bytes]:  # the simulated links: every other instance that is up
        return [n.key.public_key for n in sim.nodes[1:] if n.up]

    reads = NodeReads(node.genesis, "node0", core.chain, core.mempool, core.replica, connected, lambda: None, _refuse)
    return RpcServer(make_routes(reads))


@pytest.fixture(scope="module")
def story():
    logging.disable(logging.CRITICAL)
    try:
        made = run_story()
    finally:
        logging.disable(logging.NOTSET)
    return made


def call(server: RpcServer, method: str, *params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    reply = json.loads(asyncio.run(server.dispatcher.handle(body, CallContext("http"))))
    assert "error" not in reply, reply["error"]
    return reply["result"]


def test_the_pages_read_every_proposal_vote_and_execution_through_the_rpc(story):
    server = serve(story.sim)
    proposals = call(server, "chain_call", "governance", "list_proposals", [0, 50])["result"]
    assert [p["state"] for p in proposals] == ["executed", "open", "executed", "expired", "cancelled", "passed"]
    assert proposals[story.ids["code"]]["code"]["code_hash"] == story.code_hash
    assert proposals[story.ids["add"]]["args"][0] == story.spare and proposals[story.ids["add"]]["no"] == ["fairplay"]
    events = call(server, "chain_getEvents", "governance", {"data": {"id": story.ids["add"]}})["events"]
    assert [e["name"] for e in events] == ["ProposalCreated", "Voted", "Voted", "Voted", "Voted", "Voted",
                                           "ProposalPassed", "ProposalExecuted"]
    assert events[1]["data"]["org"] == "fairplay" and events[1]["data"]["yes"] is False
    assert events[-1]["height"] == story.heights["add_execute"] and events[-1]["tx_id"] == story.txs["add_execute"]
    executed = call(server, "chain_getReceipt", story.txs["add_execute"])["events"]
    scheduled = [e for e in executed if e["name"] == "ValidatorSetScheduled"]
    assert scheduled and scheduled[0]["data"]["activation_height"] == story.activation
    sets = call(server, "chain_getValidators")
    assert [e["from_height"] for e in sets["schedule"]] == [1, story.activation] and story.spare in sets["validators"]
    assert call(server, "chain_call", "governance", "get_validator", [story.spare])["result"]["name"] == "spare"
    assert call(server, "chain_call", "governance", "get_proposal", [99])["result"] is None


# --- in the browser -------------------------------------------------------------------------


class Served:
    """The explorer over the story's chain on a loopback port, in a thread with its own event loop."""

    def __init__(self, server: RpcServer) -> None:
        self.server, self.loop = server, asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner = None
        self.url = ""

    def start(self) -> "Served":
        from aiohttp import web

        async def up() -> str:
            app = self.server.make_app()
            add_explorer_routes(app)
            self.runner = web.AppRunner(app)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            port = self.runner.addresses[0][1]
            return f"http://127.0.0.1:{port}"

        self.thread.start()
        self.url = asyncio.run_coroutine_threadsafe(up(), self.loop).result(timeout=30)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def site(story):
    served = Served(serve(story.sim)).start()
    yield served.url
    served.stop()


PHONE = (390, 844)


def no_overflow(driver, route: str) -> None:
    """Neither the page nor any element on it is wider than the phone's screen."""
    width = driver.execute_script("return document.documentElement.clientWidth")
    scroll = driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= PHONE[0] and scroll <= width, f"{route} is {scroll} px wide on a {width} px phone screen"
    sticking_out = driver.execute_script("""
        const w = document.documentElement.clientWidth, out = [];
        for (const e of document.querySelectorAll("body *")) {
          const right = e.getBoundingClientRect().right;
          if (right > w + 0.5) out.push(`${e.tagName.toLowerCase()}#${e.id}.${e.className} to ${Math.round(right)} px`);
        }
        return out.slice(0, 5);""")
    assert not sticking_out, f"{route} on a {width} px screen: {sticking_out}"


@pytest.mark.integration  # a loopback server and a headless browser
def test_governance_pages_in_the_browser(story, site, browser):
    from tests.integration.test_explorer_browser import WINDOW, console_errors, open_page, shot, wait_text

    driver, ids = browser, story.ids
    driver.set_window_size(*WINDOW)
    open_page(driver, site, "#/governance")
    wait_text(driver, "#governance-settings", "2/3 of the active organisations", "60 s")
    wait_text(driver, "#proposal-list", "add_validator", "executed", "passed-waiting-timelock", "expired",
                        "cancelled", "open", "Fixit runs a fifth validator")
    states = {int(r.get_attribute("data-proposal")): r.get_attribute("data-state")
              for r in driver.find_elements("css selector", "#proposal-list tr[data-proposal]")}
    assert states == {ids["add"]: "executed", ids["code"]: "open", ids["settings"]: "executed",
                      ids["expired"]: "expired", ids["cancelled"]: "cancelled", ids["rotate"]: "passed-waiting-timelock"}
    row = wait_text(driver, f"#proposal-list tr[data-proposal='{ids['add']}']", "4 for \u00b7 1 against \u00b7 4 needed",
                    "Platform")
    assert f"executed at block {story.heights['add_execute']}" in row, row
    wait_text(driver, f"#proposal-list tr[data-proposal='{ids['code']}']", story.code_hash[:10])
    assert "UTC" in driver.find_element("css selector", f"#proposal-list tr[data-proposal='{ids['rotate']}']").text
    shot(driver, "governance.png")

    open_page(driver, site, f"#/proposal/{ids['add']}")
    wait_text(driver, "#proposal-args", "validator key", story.spare, "name", "spare", "127.0.0.1:26090", "127.0.0.1:27090")
    votes = wait_text(driver, "#proposal-votes", "no", "yes", "4 of 4 yes")
    assert len(driver.find_elements("css selector", "#proposal-votes tr[data-org]")) == 5, votes
    assert driver.find_element("css selector", "#proposal-votes tr[data-org='fairplay']").text.count("no") >= 1
    execution = wait_text(driver, "#proposal-execution", "validator set from", f"block {story.activation}",
                          str(story.heights["add_execute"]), story.txs["add_execute"][:10], "ValidatorSetScheduled")
    assert "spare" in execution
    wait_text(driver, "#proposal-events", "ProposalCreated", "Voted", "ProposalPassed", "ProposalExecuted")
    shot(driver, "proposal.png")

    open_page(driver, site, f"#/proposal/{ids['code']}")
    assert wait_text(driver, "#proposal-code-hash", "0x") == story.code_hash
    wait_text(driver, "#proposal-args", "deploy", "counter", "bump")
    open_page(driver, site, f"#/proposal/{ids['settings']}")
    wait_text(driver, "#proposal-args", "governance", "voting_period_s", "60")
    open_page(driver, site, f"#/proposal/{ids['rotate']}")
    wait_text(driver, "#proposal-state", "passed-waiting-timelock", "executable from")
    wait_text(driver, "#proposal-execution", "the timelock ends")
    open_page(driver, site, "#/proposal/99")
    wait_text(driver, "#proposal-missing", "No proposal 99 on this chain", "numbered 0 to 5")
    open_page(driver, site, "#/proposal/123456789012345678901234567890")
    wait_text(driver, "#proposal-missing", "No proposal 123456789012345678901234567890 on this chain")

    open_page(driver, site, "#/validators")
    wait_text(driver, "#validator-set", "spare", "node0", "this node", "connected")
    wait_text(driver, "#validator-schedule", "genesis set", "added spare", str(story.activation), "in force")
    shot(driver, "validators.png")

    # Governance events on transaction and block pages: named, linked, no raw bytes.
    open_page(driver, site, f"#/tx/{story.txs['add_no']}")
    wait_text(driver, "#tx-proposal", f"proposal {ids['add']}")
    voted = wait_text(driver, "#events", "governance.Voted", f"proposal {ids['add']}", "org fairplay", "yes false")
    assert "\\x" not in voted and "b'" not in voted
    open_page(driver, site, f"#/tx/{story.txs['add_execute']}")
    scheduled = wait_text(driver, "#events", "governance.ValidatorSetScheduled", "governance.ProposalExecuted",
                          f"activation_height {story.activation}", "spare", "node3")
    assert story.spare not in scheduled  # keys shown by name, not as hex
    open_page(driver, site, f"#/tx/{story.txs['code_propose']}")
    created = wait_text(driver, "#events", "governance.ProposalCreated", "code hash:", story.code_hash[:10], "UTC")
    assert "bytes)" in driver.find_element("css selector", "main").text  # the payload argument: a fingerprint and size
    assert len(created) < 2000, created
    open_page(driver, site, f"#/block/{story.heights['add_execute']}")
    wait_text(driver, "main", "governance.execute")

    driver.set_window_size(*PHONE)
    for route in ("#/governance", f"#/proposal/{ids['add']}", f"#/proposal/{ids['code']}", "#/validators",
                  f"#/tx/{story.txs['add_execute']}", "#/proposal/99"):
        open_page(driver, site, route)
        wait_text(driver, "main", "")
        no_overflow(driver, route)
        if route == f"#/proposal/{ids['add']}":
            shot(driver, "proposal-phone.png")
    driver.set_window_size(*WINDOW)
    errors = console_errors(driver)
    assert not errors, errors

