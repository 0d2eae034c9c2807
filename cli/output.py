"""Shared CLI plumbing: exit codes, errors that say what to do next, output, units.

How it works: every command body runs inside ``handle_errors``, which turns the
project's exceptions into a ``CliError`` carrying a message, a hint ("next: ...") and
one of the documented exit codes below; click prints it on stderr and exits with that
code. Output goes through ``emit``: with ``--json`` the result object is printed as
JSON on stdout (nothing else is), otherwise a human rendering.

Values in the users' words: amounts are currency units with at most two decimals
("12.50"), converted exactly with Decimal to integer minor units (``UNIT_SCALE`` per
unit); rates are percentages ("2.5%") converted to basis points; hashes and
commitments are 0x-hex, or any text (then its SHA-256 is used), or @FILE (the SHA-256
of the file's bytes).
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import click

from ledger.crypto import sha256
from ledger.errors import ChainError, CorruptionError

# --- exit codes (docs/cli.md lists them) ------------------------------------------
EXIT_OK = 0
#: Bad input, unknown name or id, wrong password, missing file: fix the command.
EXIT_USER = 1
#: Usage error found by click itself (unknown option, missing argument).
EXIT_USAGE = 2
#: The node cannot be reached or answered with an error that is not about the transaction.
EXIT_NODE = 3
#: The transaction was refused by the node or committed with a failed receipt.
EXIT_TX_FAILED = 4
#: The transaction was admitted but not committed within --timeout (outcome unknown).
EXIT_TIMEOUT = 5
#: Data failed verification (node verify, snapshot checksum or genesis mismatch).
EXIT_VERIFY = 6
#: Interrupted with Ctrl-C.
EXIT_INTERRUPTED = 130

EXIT_CODES = {EXIT_OK: "ok", EXIT_USER: "user error", EXIT_USAGE: "usage error",
              EXIT_NODE: "node unreachable or node error", EXIT_TX_FAILED: "transaction refused or failed",
              EXIT_TIMEOUT: "transaction not committed in time", EXIT_VERIFY: "verification failed",
              EXIT_INTERRUPTED: "interrupted"}

#: Minor units per currency unit (cents): "12.50" -> 1250.
UNIT_SCALE = 100
#: Decimal places a currency amount may have (log10 of UNIT_SCALE).
UNIT_DECIMALS = 2
#: Basis points in 100 %.
BPS_SCALE = 10_000
#: Largest amount the CLI accepts (the orders contract's MAX_PRICE, 10^15 minor units).
MAX_AMOUNT_MINOR = 10**15
#: Default RPC endpoint of a local node.
DEFAULT_NODE_URL = "http://127.0.0.1:8545"

F = TypeVar("F", bound=Callable[..., Any])


class CliError(click.ClickException):
    """An error for the user: message, what to do next, exit code."""

    def __init__(self, message: str, code: int = EXIT_USER, hint: str | None = None) -> None:
        super().__init__(message)
        self.exit_code = code
        self.hint = hint
        ctx = click.get_current_context(silent=True)  # shown after the context is gone: decide now
        self.as_json = bool(ctx and ctx.find_root().meta.get("shopchain.json"))

    def show(self, file: Any = None) -> None:
        if self.as_json:
            click.echo(json.dumps({"error": self.message, "hint": self.hint, "exit_code": self.exit_code}), err=True)
            return
        click.echo(f"error: {self.message}", err=True)
        if self.hint:
            click.echo(f"next: {self.hint}", err=True)


def node_unreachable_hint(url: str) -> str:
    return (f"start a node (`shopchain devnet up` or `shopchain node start --home HOME`) "
            f"or point --node / SHOPCHAIN_NODE at a running one (tried {url})")


def translate(exc: BaseException) -> CliError:
    """The CliError (message, hint, exit code) for an exception from the layers below."""
    from node.client import RpcFailure, TxFailed
    from node.ops.keystore import KeystoreError, WrongPassword

    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, TxFailed):
        r = exc.receipt
        return CliError(f"transaction {r['tx_id']} failed in block {r.get('height')}: {r['error']}", EXIT_TX_FAILED,
                        "the chain refused this step; check the state with the group's `show` verb "
                        "and who may call it (docs/commerce.md)")
    if isinstance(exc, RpcFailure):
        if exc.code == -1:
            found = re.match(r"cannot reach (\S+): ", exc.rpc_message)
            return CliError(exc.rpc_message, EXIT_NODE, node_unreachable_hint(found.group(1) if found else "--node"))
        reason = exc.reason
        if reason is not None:
            hints = {"unregistered_sender": "this key is not a registered account on this chain; pick another "
                                            "--key / --key-file, or ask your organisation admin to register it",
                     "rotated_key": "this key was rotated out of its account; sign with the account's current "
                                    "key (`shopchain account show KEY` shows it)",
                     "bad_signature": "the transaction was signed with the wrong key",
                     "wrong_chain": "this node runs another chain; check --node",
                     "nonce_too_low": "another transaction from this key used that nonce; run the command again",
                     "mempool_full": "the node is overloaded; try again in a moment"}
            return CliError(f"the node refused the transaction: {exc.rpc_message}", EXIT_TX_FAILED,
                            hints.get(reason, "fix the transaction and send it again"))
        if exc.code == -32004:
            return CliError(exc.rpc_message, EXIT_USER, "check the id or height")
        if exc.code == -32602:
            return CliError(exc.rpc_message, EXIT_USER, "check the arguments (see --help)")
        return CliError(f"the node answered an error: {exc.rpc_message}", EXIT_NODE,
                        "see the node's log; if it persists, ask the node's operator")
    if isinstance(exc, WrongPassword):
        return CliError(str(exc), EXIT_USER)
    if isinstance(exc, KeystoreError):
        return CliError(str(exc), EXIT_USER, "`shopchain keys list` shows the keystore's keys; "
                                             "for a plain key file use --key-file PATH")
    if isinstance(exc, TimeoutError):
        return CliError(str(exc), EXIT_TIMEOUT,
                        "the transaction may still commit: check it with `shopchain tx receipt TX_ID`")
    if isinstance(exc, CorruptionError):
        return CliError(exc.problem, EXIT_VERIFY, f"the store is damaged; recover with: {exc.recovery}")
    if isinstance(exc, ChainError):
        return CliError(str(exc), EXIT_USER)
    if isinstance(exc, ConnectionError):
        return CliError(f"connection to the node failed: {exc}", EXIT_NODE, node_unreachable_hint("--node"))
    if isinstance(exc, OSError):
        return CliError(f"{exc.strerror or exc}{': ' + str(exc.filename) if exc.filename else ''}", EXIT_USER,
                        "check the path and its permissions")
    raise exc


def handle_errors(fn: F) -> F:
    """Run a command body, turning known exceptions into CliError (and Ctrl-C into 130)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except CliError as exc:
            ctx = click.get_current_context(silent=True)
            exc.as_json = exc.as_json or bool(ctx and ctx.find_root().meta.get("shopchain.json"))
            raise
        except click.ClickException:
            raise
        except (ChainError, TimeoutError, OSError) as exc:
            raise translate(exc) from None

    return wrapper  # type: ignore[return-value]


# --- output -----------------------------------------------------------------------

def json_option(fn: F) -> F:
    """``--json``: machine-readable output (also switches error messages to JSON on stderr)."""

    def remember(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        if value:
            ctx.find_root().meta["shopchain.json"] = True
        return value

    return click.option("--json", "as_json", is_flag=True, callback=remember, expose_value=True, is_eager=True,
                        help="Print the result as JSON (for scripts).")(fn)


def emit(as_json: bool, data: Any, human: Callable[[Any], str] | str | None = None) -> None:
    """Print ``data`` as JSON, or its human rendering."""
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    if human is None:
        click.echo(render(data))
    elif callable(human):
        click.echo(human(data))
    else:
        click.echo(human)


def render(data: Any, indent: int = 0) -> str:
    """A readable key: value rendering of nested JSON."""
    pad = "  " * indent
    if isinstance(data, dict):
        lines = []
        for key, value in data.items():
            if isinstance(value, (dict, list)) and value:
                lines.append(f"{pad}{key}:")
                lines.append(render(value, indent + 1))
            else:
                lines.append(f"{pad}{key}: {_scalar(value)}")
        return "\n".join(lines)
    if isinstance(data, list):
        if not data:
            return f"{pad}(none)"
        return "\n".join(f"{pad}- {_scalar(v)}" if not isinstance(v, (dict, list))
                         else f"{pad}-\n{render(v, indent + 1)}" for v in data)
    return pad + _scalar(data)


def _scalar(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list) and not value:
        return "(none)"
    if isinstance(value, dict) and not value:
        return "{}"
    return str(value)


# --- units --------------------------------------------------------------------------

def parse_amount(text: str, what: str = "amount", allow_zero: bool = False, decimals: int = UNIT_DECIMALS,
                 code: str = "") -> int:
    """'12.50' -> 1250 minor units, exactly; refuses more decimals than the currency has
    (``decimals``: the base currency's UNIT_DECIMALS unless another currency is named)."""
    cleaned = str(text).strip().replace("_", "")
    unit = f"{code} units" if code else "currency units"
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise CliError(f"{what} {text!r} is not a number; expected {unit} like "
                       f"{'12' if not decimals else '12.' + '5' * decimals}") from None
    if not value.is_finite():
        raise CliError(f"{what} {text!r} is not a finite number")
    minor = value * (10 ** decimals)
    if minor != minor.to_integral_value():
        raise CliError(f"{what} {text!r} has more than {decimals} decimals; "
                       + (f"{code or 'this currency'} has {decimals}" if code or decimals != UNIT_DECIMALS
                          else "amounts are in currency units with cents, like 12.34"))
    result = int(minor)
    if result < 0 or (result == 0 and not allow_zero):
        raise CliError(f"{what} {text!r} must be {'zero or ' if allow_zero else ''}positive")
    if result > MAX_AMOUNT_MINOR:
        raise CliError(f"{what} {text!r} exceeds the largest amount, {format_amount(MAX_AMOUNT_MINOR, decimals)}")
    return result


def format_amount(minor: int | str | None, decimals: int = UNIT_DECIMALS, code: str = "") -> str:
    """1250 -> '12.50' (minor units may arrive as decimal strings from JSON); with ``code``, '12.50 USD'."""
    if minor is None:
        return "-"
    value = int(minor)
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10 ** decimals)
    text = f"{sign}{whole:,}" + (f".{frac:0{decimals}d}" if decimals else "")
    return f"{text} {code}" if code else text


def parse_percent(text: str, what: str = "rate") -> int:
    """'2.5%' or '2.5' -> 250 basis points, exactly."""
    cleaned = str(text).strip().rstrip("%").strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise CliError(f"{what} {text!r} is not a percentage like 2.5%") from None
    bps = value * 100
    if not value.is_finite() or bps != bps.to_integral_value() or not 0 <= bps <= BPS_SCALE:
        raise CliError(f"{what} {text!r}: expected 0..100 % with at most two decimals")
    return int(bps)


def format_percent(bps: int) -> str:
    return f"{Decimal(int(bps)) / 100:g}%"


def parse_commitment(text: str, what: str = "hash") -> bytes:
    """0x-hex of 32 bytes as is; @FILE -> SHA-256 of the file; other text -> SHA-256 of it."""
    if text.startswith("0x"):
        try:
            raw = bytes.fromhex(text[2:])
        except ValueError:
            raise CliError(f"{what} {text!r} is not valid hex") from None
        if len(raw) != 32:
            raise CliError(f"{what} {text!r} has {len(raw)} bytes, expected 32 (or give text to hash)")
        return raw
    if text.startswith("@"):
        path = text[1:]
        if not os.path.isfile(path):
            raise CliError(f"{what}: no file {path!r}", hint="give @PATH of an existing file, 0x-hex, or text")
        with open(path, "rb") as fh:
            return sha256(fh.read())
    if not text:
        raise CliError(f"{what} is empty; give 0x-hex, @FILE or some text")
    return sha256(text.encode("utf-8"))


def parse_hex(text: str, what: str, size: int | None = None) -> bytes:
    if not text.startswith("0x"):
        raise CliError(f"{what} {text!r}: expected 0x-hex")
    try:
        raw = bytes.fromhex(text[2:])
    except ValueError:
        raise CliError(f"{what} {text!r} is not valid hex") from None
    if size is not None and len(raw) != size:
        raise CliError(f"{what} {text!r} has {len(raw)} bytes, expected {size}")
    return raw


def short(hex_text: str | None, n: int = 10) -> str:
    if not hex_text:
        return "-"
    return hex_text if len(hex_text) <= n + 4 else hex_text[: n + 2] + "…"


class LiveCounter:
    """A one-line live status on stderr ("exporting entries: 12,345") for work of unknown size."""

    #: Seconds between redraws.
    REDRAW_S = 0.2

    def __init__(self, label: str, enabled: bool = True) -> None:
        import time

        self.label, self.enabled, self.count = label, enabled, 0
        stream = click.get_text_stream("stderr")
        self.redraw = enabled and stream.isatty()  # a log file gets only the final line
        self._clock = time.monotonic
        self._last = 0.0

    def update(self, n: int) -> None:
        self.count += n
        now = self._clock()
        if self.redraw and now - self._last >= self.REDRAW_S:
            self._last = now
            click.echo(f"\r{self.label}: {self.count:,}", nl=False, err=True)

    def __enter__(self) -> "LiveCounter":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            prefix = "\r" if self.redraw else ""
            click.echo(f"{prefix}{self.label}: {self.count:,}", err=True)
