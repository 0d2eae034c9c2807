"""The CLI driven like a user would, without a network: keys, units, errors, completion, docs."""

from __future__ import annotations

import json
import os
import re

import pytest
from click.testing import CliRunner

from cli.main import main
from cli.output import (
    EXIT_NODE,
    EXIT_USER,
    CliError,
    format_amount,
    parse_amount,
    parse_commitment,
    parse_percent,
)
from ledger.crypto import SigningKey, sha256
from ledger.hexfmt import to_hex
from ledger.privacy import encryption_public_key
from node.ops.home import write_key_file

PASSWORD = "s3cret-pass"
DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "docs", "cli.md")
#: A port nothing listens on (the discard port; connections are refused on loopback).
DEAD_NODE = "http://127.0.0.1:9"


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOPCHAIN_KEYSTORE", str(tmp_path / "keys"))
    monkeypatch.setenv("SHOPCHAIN_PASSWORD", PASSWORD)
    monkeypatch.delenv("SHOPCHAIN_NODE", raising=False)
    monkeypatch.delenv("SHOPCHAIN_KEY", raising=False)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(main, list(args), input=input, catch_exceptions=False)

    return invoke


@pytest.mark.parametrize("text, minor", [("12.50", 1250), ("12.5", 1250), ("0.01", 1), ("1_000", 100_000),
                                         ("7", 700), (" 3.10 ", 310)])
def test_amounts_convert_exactly(text, minor):
    assert parse_amount(text) == minor
    assert parse_amount(format_amount(minor).replace(",", "")) == minor


@pytest.mark.parametrize("text, message", [("12.345", "more than 2 decimals"), ("abc", "not a number"),
                                           ("-1", "positive"), ("0", "positive"), ("NaN", "finite"),
                                           ("100000000000000", "exceeds")])
def test_bad_amounts_say_why(text, message):
    with pytest.raises(CliError, match=message):
        parse_amount(text)


def test_percent_and_commitments():
    assert parse_percent("2.5%") == 250 and parse_percent("100") == 10_000
    with pytest.raises(CliError):
        parse_percent("0.001%")
    assert parse_commitment("hello") == sha256(b"hello")
    assert parse_commitment("0x" + "ab" * 32) == b"\xab" * 32
    with pytest.raises(CliError, match="expected 32"):
        parse_commitment("0xabcd")
    assert format_amount(123456) == "1,234.56" and format_amount(-5) == "-0.05"


def test_keys_lifecycle_never_prints_the_secret_unless_asked(run, tmp_path):
    created = run("keys", "new", "alice", "--json")
    assert created.exit_code == 0, created.output
    public = json.loads(created.stdout)["public_key"]
    listed = run("keys", "list")
    assert "alice" in listed.stdout and public in listed.stdout
    shown = run("keys", "show", "alice")
    assert public in shown.stdout and "seed" not in shown.stdout
    exported = run("keys", "export", "alice", "--reveal", "--json")
    seed = json.loads(exported.stdout)["seed"]
    assert SigningKey(bytes.fromhex(seed[2:])).public_key.hex() == public[2:]
    # Every key comes with its X25519 encryption key (derived from the seed), shown by new, show and list.
    enc = json.loads(created.stdout)["encryption_key"]
    assert enc == to_hex(encryption_public_key(bytes.fromhex(seed[2:])))
    assert f"encryption key: {enc}" in shown.stdout
    assert {r["name"]: r["encryption_key"] for r in json.loads(run("keys", "list", "--json").stdout)} == {"alice": enc}
    assert seed not in run("keys", "list", "--json").stdout + shown.stdout
    plain = tmp_path / "alice-plain.json"
    assert run("keys", "export", "alice", "-o", str(plain)).exit_code == 0
    assert oct(os.stat(plain).st_mode & 0o777) == "0o600"
    # Import a plain key file (the devnet format) and a hex seed.
    devnet_key = SigningKey.generate()
    write_key_file(str(tmp_path / "buyer-1.json"), devnet_key)
    assert run("keys", "import", "buyer", str(tmp_path / "buyer-1.json")).exit_code == 0
    assert run("keys", "show", "buyer", "--json").stdout.count(devnet_key.public_key.hex()) == 1
    other = SigningKey.generate()
    assert run("keys", "import", "hexed", "0x" + other.seed.hex()).exit_code == 0
    duplicate = run("keys", "import", "again", str(plain))
    assert duplicate.exit_code == EXIT_USER and "already stored as 'alice'" in duplicate.stderr
    deleted = run("keys", "delete", "hexed", "--yes")
    assert deleted.exit_code == 0 and "hexed" not in run("keys", "list").stdout


def test_wrong_password_is_a_user_error_with_a_hint(run, monkeypatch):
    assert run("keys", "new", "bob").exit_code == 0
    monkeypatch.setenv("SHOPCHAIN_PASSWORD", "not-the-password")
    result = run("keys", "export", "bob", "--reveal")
    assert result.exit_code == EXIT_USER
    assert "does not open" in result.stderr and "seed" not in result.stdout


def test_password_file_and_prompt(run, tmp_path, monkeypatch):
    monkeypatch.delenv("SHOPCHAIN_PASSWORD")
    pw = tmp_path / "pw.txt"
    pw.write_text("from-a-file-123\n")
    assert run("keys", "new", "carol", "--password-file", str(pw)).exit_code == 0
    prompted = run("keys", "export", "carol", "--reveal", input="from-a-file-123\n")
    assert prompted.exit_code == 0 and "seed: 0x" in prompted.stdout
    assert run("keys", "export", "carol", "--reveal", input="wrong-one-here\n").exit_code == EXIT_USER


def test_bad_amount_is_refused_before_any_network_use(run, tmp_path):
    key = tmp_path / "k.json"
    write_key_file(str(key), SigningKey.generate())
    result = run("order", "place", "--merchant", "0x" + "11" * 32, "--product", "sku-1", "--price", "12.345",
                 "--key-file", str(key), "--node", DEAD_NODE)
    assert result.exit_code == EXIT_USER
    assert "more than 2 decimals" in result.stderr


@pytest.mark.integration  # connects to a closed port / runs the CLI as a process
def test_unreachable_node_gives_exit_code_and_next_step(run):
    result = run("account", "show", "0x" + "22" * 32, "--node", DEAD_NODE)
    assert result.exit_code == EXIT_NODE
    assert "cannot reach" in result.stderr and "next:" in result.stderr and "devnet up" in result.stderr
    as_json = run("block", "latest", "--node", DEAD_NODE, "--json")
    assert as_json.exit_code == EXIT_NODE
    error = json.loads(as_json.stderr.strip().splitlines()[-1])
    assert error["exit_code"] == EXIT_NODE and error["hint"]


def test_missing_signer_and_unknown_account_names(run):
    no_signer = run("order", "confirm", "1", "--node", DEAD_NODE)
    assert no_signer.exit_code == EXIT_USER and "--key NAME" in no_signer.stderr
    unknown = run("order", "list", "--buyer", "nobody-here", "--node", DEAD_NODE)
    assert unknown.exit_code == EXIT_USER and "keys list" in unknown.stderr


def test_usage_errors_keep_clicks_code():
    result = CliRunner().invoke(main, ["order", "place", "--price"])
    assert result.exit_code == 2


@pytest.mark.parametrize("shell, marker", [("bash", "_SHOPCHAIN_COMPLETE=bash_complete"),
                                           ("zsh", "_SHOPCHAIN_COMPLETE=zsh_complete"),
                                           ("fish", "_SHOPCHAIN_COMPLETE=fish_complete")])
@pytest.mark.integration  # connects to a closed port / runs the CLI as a process
def test_completion_scripts(shell, marker):
    result = CliRunner().invoke(main, ["completion", shell])
    assert result.exit_code == 0 and marker in result.output


def every_command_path(group=main, prefix=("shopchain",)):
    import click

    for name, command in sorted(group.commands.items()):
        path = prefix + (name,)
        if isinstance(command, click.Group):
            yield from every_command_path(command, path)
        else:
            yield " ".join(path)


def test_every_command_has_help():
    for path in every_command_path():
        result = CliRunner().invoke(main, path.split()[1:] + ["--help"])
        assert result.exit_code == 0, path
        assert "Usage:" in result.output


def test_docs_mention_every_command_with_an_example():
    with open(DOCS) as fh:
        text = fh.read()
    missing = []
    for path in every_command_path():
        # Each verb has a heading and at least one example line starting with the full command.
        if not re.search(rf"^#+ `{re.escape(path)}`", text, re.M) or not re.search(rf"^\$ {re.escape(path)}\b", text, re.M):
            missing.append(path)
    assert not missing, f"docs/cli.md lacks a heading and a `$ ...` example for: {missing}"


def test_raw_tx_arguments_are_json_with_hex_bytes():
    from cli.chain_cmds import parse_json_arg, to_tx_value

    values = [to_tx_value(parse_json_arg(a)) for a in ["0xabcd", "1250", "ISSUER", "true", '["0x01", {"k": "0x02"}]']]
    assert values == [b"\xab\xcd", 1250, "ISSUER", True, [b"\x01", {"k": b"\x02"}]]
    with pytest.raises(CliError, match="float"):
        to_tx_value(parse_json_arg("1.5"))


def test_key_given_as_a_file_path_points_to_key_file(run, tmp_path):
    key = tmp_path / "plain.json"
    write_key_file(str(key), SigningKey.generate())
    result = run("order", "confirm", "1", "--key", str(key), "--node", DEAD_NODE)
    assert result.exit_code == EXIT_USER and "--key-file" in result.stderr


def test_exceptions_map_to_the_documented_exit_codes():
    from cli.output import EXIT_TIMEOUT, EXIT_TX_FAILED, translate
    from node.client import RpcFailure, TxFailed
    from node.ops.keystore import WrongPassword

    assert translate(RpcFailure(-1, "cannot reach http://h:1: refused")).exit_code == EXIT_NODE
    refused = translate(RpcFailure(-32000, "sender is not registered", {"reason": "unregistered_sender"}))
    assert refused.exit_code == EXIT_TX_FAILED and "registered" in refused.hint
    failed = translate(TxFailed({"tx_id": "0x01", "height": 9, "error": "RequireFailed: no"}))
    assert failed.exit_code == EXIT_TX_FAILED and "block 9" in failed.message
    assert translate(TimeoutError("not committed")).exit_code == EXIT_TIMEOUT
    assert translate(RpcFailure(-32004, "block 99 is not committed yet")).exit_code == EXIT_USER
    assert translate(RpcFailure(-32603, "Internal error")).exit_code == EXIT_NODE
    assert translate(WrongPassword("bad")).exit_code == EXIT_USER
    assert translate(ConnectionResetError("reset")).exit_code == EXIT_NODE


def test_shell_completion_through_clicks_environment_variable():
    env = {"_SHOPCHAIN_COMPLETE": "bash_complete", "COMP_WORDS": "shopchain order p", "COMP_CWORD": "2"}
    result = CliRunner().invoke(main, [], env=env, prog_name="shopchain")
    assert set(result.output.split()) == {"plain,place", "plain,poke"}
    env = {"_SHOPCHAIN_COMPLETE": "bash_complete", "COMP_WORDS": "shopchain case open 1 --kind ", "COMP_CWORD": "5"}
    kinds = CliRunner().invoke(main, [], env=env, prog_name="shopchain").output.split()
    assert kinds == ["plain,not-received", "plain,refund-only", "plain,return"]


def test_a_damaged_store_is_a_verification_failure():
    from cli.output import EXIT_VERIFY, translate
    from ledger.errors import CorruptionError

    error = translate(CorruptionError("block 7 is missing"))
    assert error.exit_code == EXIT_VERIFY and "node verify" in error.hint


def test_docs_list_every_exit_code():
    from cli.output import EXIT_CODES

    with open(DOCS) as fh:
        text = fh.read()
    assert all(re.search(rf"^\| {code} \| ", text, re.M) for code in EXIT_CODES), EXIT_CODES


def test_durations_and_dates_in_the_viewers_zone(monkeypatch):
    """Terms are typed as 14d / 36h / 1d12h; deadlines print as local dates with the time left."""
    import time as _time

    from cli.timefmt import format_duration, format_when, parse_duration
    assert parse_duration("14d") == 14 * 86_400 and parse_duration("36h") == 36 * 3_600
    assert parse_duration("1d12h") == parse_duration("36h") and parse_duration(" 90m ") == 5_400
    for bad in ("", "14", "2 weeks", "1.5d", "-3d", "d", "1d" * 20):
        with pytest.raises(CliError, match="expected a duration"):
            parse_duration(bad, "--returns")
    with pytest.raises(CliError, match="expected 1 hour to"):
        parse_duration("30m", "--accept", minimum=3600)
    assert format_duration(36 * 3_600) == "1 day 12 hours" and format_duration(60) == "1 minute"
    assert format_duration(14 * 86_400 + 59) == "14 days 59 seconds"
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    _time.tzset()
    try:
        at = 1_767_225_600                       # 2026-01-01T00:00:00Z
        assert format_when(at, at - 90_000) == "2026-01-01 09:00:00 JST (in 1 day 1 hour)"
        assert format_when(at, at + 300).endswith("(5 minutes ago)")
    finally:
        monkeypatch.delenv("TZ")
        _time.tzset()


def test_cart_lines_parse_products_with_colons_optional_terms_and_the_one_line_shorthand():
    from cli.orders_cmds import parse_cart

    tent, lamp = sha256(b"acme:tent-2p"), sha256(b"acme:lamp")
    assert parse_cart(("acme:tent-2p:2:12.50", "acme:lamp:1:3:gadgets"), None, 1, None) == [
        (tent, 2, 1250, None), (lamp, 1, 300, "gadgets")]
    assert parse_cart((), "acme:tent-2p", 3, "7.50") == [(tent, 3, 250, None)]      # --price is the total
    for cart, product, qty, price, message in [
            (("acme:tent-2p:2:12.50",), "acme:tent-2p", 1, None, "not both"),
            ((), "acme:tent-2p", 3, "10.00", "does not divide evenly"),
            ((), None, 1, None, "give the cart as --line"),
            (("acme:tent-2p:two:12.50",), None, 1, None, "expected PRODUCT:QTY:UNIT_PRICE[:TERMS]"),
            (("acme:tent-2p:0:12.50",), None, 1, None, "quantity must be 1..1000000"),
            (("acme:tent-2p:1:12.505",), None, 1, None, "more than 2 decimals"),
            (tuple(f"p{i}:1:1" for i in range(33)), None, 1, None, "at most 32 lines")]:
        with pytest.raises(CliError, match=re.escape(message)):
            parse_cart(cart, product, qty, price)


def test_ship_to_fields_and_disclosure_files_are_checked_before_any_node_is_asked(run):
    from cli.delivery import parse_ship_to

    assert parse_ship_to(("name=J. Doe", "Postcode = 10115")) == {"name": "J. Doe", "postcode": "10115"}
    for bad, message in [(("nickname=JD",), "FIELD one of name, street"), (("name J. Doe",), "expected FIELD=VALUE"),
                         (("city=Berlin", "city=Bonn"), "gives city twice"), (("phone=",), "expected 1..")]:
        with pytest.raises(CliError, match=message):
            parse_ship_to(bad)
    placed = run("order", "place", "--merchant", "0x" + "11" * 32, "--product", "sku", "--price", "1",
                 "--ship-to", "age=42", "--node", DEAD_NODE, "--key", "nobody")
    assert placed.exit_code == EXIT_USER and "FIELD one of" in placed.stderr
    not_json = run("order", "verify-disclosure", "-", "--node", DEAD_NODE, input="postcode=10115")
    assert not_json.exit_code == EXIT_USER and "is not a disclosure" in not_json.stderr
    wrong_shape = run("order", "verify-disclosure", "-", "--node", DEAD_NODE, input='{"field": "postcode"}')
    assert wrong_shape.exit_code == EXIT_USER and "a disclosure is a JSON object with the keys" in wrong_shape.stderr
    text_label = run("order", "accept", "1", "--carrier", "0x" + "22" * 32, "--label", "J. Doe, 1 Main St",
                     "--node", DEAD_NODE, "--key", "nobody")
    assert text_label.exit_code == EXIT_USER and "--label takes a 0x hash only" in text_label.stderr
