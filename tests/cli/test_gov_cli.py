"""`shopchain gov`: the parts that need no network (arguments in users' words, renderings,
refusals before signing). The verbs against a running chain are driven end to end in
tests/integration/test_consortium_story.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.gov_cmds import (describe_args, format_when, parse_setting, parse_settings, proposal_text,
                          read_payload_file, shown_state)
from cli.main import main
from cli.member_cmds import validator_key
from cli.output import CliError

KEY = "0x" + "ab" * 32
NOW = 1_800_000_000_000


def proposal(**changes) -> dict:
    p = {"id": 7, "kind": "settings", "args": ["orders", {"fee_bps": 300}], "description": "fees follow the market",
         "proposer": KEY, "proposer_org": "platform", "created_height": 10, "created_ms": NOW - 60_000,
         "voting_ends_ms": NOW + 3_600_000, "state": "open", "yes": ["platform"], "no": [], "passed_ms": 0,
         "executable_ms": 0, "execute_by_ms": 0, "executed_height": 0, "code": None}
    p.update(changes)
    return p


@pytest.mark.parametrize("text, parsed", [("fee_bps=300", ("fee_bps", 300)), ("on = true", ("on", True)),
                                          ("salt=0x0aff", ("salt", b"\x0a\xff")), ("name=acme", ("name", "acme")),
                                          ("delta=-5", ("delta", -5))])
def test_settings_in_users_words(text, parsed):
    assert parse_setting(text) == parsed


@pytest.mark.parametrize("contract, pairs, message", [
    ("orders", (), "no settings given for orders"),
    ("orders", ("fee_bps",), "expected NAME=VALUE"),
    ("orders", ("a=1", "a=2"), "setting a is given twice"),
    ("governance", ("quorum=3",), "unknown governance setting quorum; expected one of threshold_num"),
    ("governance", ("timelock_s=soon",), "timelock_s takes a whole number, found 'soon'"),
])
def test_bad_settings_say_what_was_expected(contract, pairs, message):
    with pytest.raises(CliError, match=message):
        parse_settings(contract, pairs)


def test_times_are_dates_with_the_time_left():
    assert format_when(NOW + 65_000, NOW).endswith("(in 1 minute 5 seconds)")
    assert format_when(NOW - 2 * 86_400_000 - 3_600_000, NOW).endswith("(2 days 1 hour ago)")
    assert format_when(0, NOW) == "-"


def test_a_passed_proposal_says_whether_it_is_timelocked_executable_or_too_late():
    passed = proposal(state="passed", executable_ms=NOW + 1000, execute_by_ms=NOW + 10_000)
    assert shown_state(passed, NOW) == "passed, timelocked"
    assert shown_state(passed, NOW + 1000) == "passed, executable"
    assert shown_state(passed, NOW + 10_000) == "expired (execution window ended)"
    assert shown_state(proposal(), NOW + 3_600_000) == "expired (voting ended)"
    assert shown_state(proposal(state="executed"), NOW) == "executed"


def test_each_kind_renders_readably():
    names = {KEY: "node3"}
    assert describe_args(proposal()) == ["settings of orders: fee_bps=300"]
    added = proposal(kind="add_validator", args=[KEY, "newco-1", "newco", "10.0.0.9:26600", ""])
    assert describe_args(added) == ["add validator newco-1 of newco", f"node key {KEY}", "p2p 10.0.0.9:26600  rpc -"]
    assert describe_args(proposal(kind="remove_validator", args=[KEY]), names) == [f"remove validator node3 ({KEY})"]
    code = proposal(kind="code", args=[], code={"action": "upgrade", "name": "ledger", "code_hash": "0x11",
                                                 "capabilities": [], "payload_hash": "0x22"})
    assert describe_args(code) == ["upgrade contract ledger", "code hash 0x11", "capabilities none", "payload hash 0x22"]


def test_show_says_how_many_votes_are_missing_and_when_a_validator_change_applies():
    text = proposal_text(proposal(), NOW, needed=4)
    assert "proposal 7: settings - open" in text and "1 yes (platform)" in text and "needs 3 more yes votes" in text
    added = proposal(kind="add_validator", args=[KEY, "n", "newco", "h:1", ""], state="executed", executed_height=90)
    assert "active from height 100" in proposal_text(added, NOW, 4, activation=100)
    pending = proposal(kind="remove_validator", args=[KEY])
    assert "h + 10 (or later)" in proposal_text(pending, NOW, 4, activation_delay=10)


def test_node_keys_come_from_exactly_one_of_hex_or_a_node_home(tmp_path):
    assert validator_key(KEY, None, "--node-key") == bytes.fromhex("ab" * 32)
    with pytest.raises(CliError, match="give exactly one of --node-key"):
        validator_key(KEY, str(tmp_path), "--node-key")
    with pytest.raises(CliError, match="give exactly one of --node-key"):
        validator_key(None, None, "--node-key")
    with pytest.raises(CliError, match="no node home at"):
        validator_key(None, str(tmp_path / "missing"), "--node-key")
    with pytest.raises(CliError, match="has 2 bytes, expected 32"):
        validator_key("0xabcd", None, "--node-key")


def test_payload_files_are_checked_before_anything_is_sent(tmp_path):
    good = tmp_path / "p.payload"
    good.write_text("0x0102ff\n")
    assert read_payload_file(str(good)) == b"\x01\x02\xff"
    bad = tmp_path / "bad.payload"
    bad.write_text("0xnothex")
    with pytest.raises(CliError, match="starts with 0x but is not valid hex"):
        read_payload_file(str(bad))
    empty = tmp_path / "empty.payload"
    empty.write_bytes(b"")
    with pytest.raises(CliError, match="is empty"):
        read_payload_file(str(empty))


def test_usage_errors_before_any_node_is_asked():
    runner = CliRunner()
    vote = runner.invoke(main, ["gov", "vote", "3", "--node", "http://127.0.0.1:9", "--key", "x"])
    assert vote.exit_code != 0 and "--yes or --no" in vote.output
    long = runner.invoke(main, ["gov", "propose", "remove-org", "acme", "-d", "x" * 2001, "--node", "http://127.0.0.1:9"])
    assert long.exit_code != 0 and "at most 2000" in long.output


def test_bad_init_args_say_what_was_expected_in_both_deploy_verbs(tmp_path):
    from cli.gov_cmds import build_payload

    source = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          "contracts_vm", "system", "nodes.sc.py")
    with pytest.raises(CliError, match="--init-args is not JSON"):
        build_payload(Path(source), "mine", False, (), "[1")
    with pytest.raises(CliError, match="--init-args must be a JSON list"):
        build_payload(Path(source), "mine", False, (), '{"a": 1}')
    refused = CliRunner().invoke(main, ["contract", "deploy-tx", source, "--name", "mine", "--init-args", "[1"])
    assert refused.exit_code == 2 and "--init-args is not JSON" in refused.output  # was a traceback
