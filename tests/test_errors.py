"""The exception hierarchy is honest: one name per concept, one root.

Every production module is imported and every exception class it defines is
collected. Two classes with the same name in different packages make ``except
VerifyError`` ambiguous to the reader and to grep; an exception outside
``ledger.errors.ChainError`` escapes the RPC and CLI handlers that catch
``ChainError`` to turn failures into clear messages.
"""

from __future__ import annotations

import importlib
import pkgutil

from ledger.errors import ChainError

PACKAGES = ["ledger", "contracts_vm", "consensus", "p2p", "node", "cli", "devnet", "bench"]

#: Exceptions that deliberately do NOT derive from ChainError, with the reason.
NOT_CHAIN_ERRORS = {
    # click's own error type: click catches it in main() and prints "Error: ..." with
    # exit code 1; deriving it (also) from ChainError would let code that catches
    # ChainError swallow a user-facing CLI error meant for click.
    "cli.output.CliError",
    # aiohttp's HTTP 408 response (raised from the request body reader so aiohttp answers
    # the client); it must stay an HTTPException/TimeoutError for aiohttp to handle it.
    "p2p.http_guard.BodyTimeout",
    # Internal control flow inside the JSON-RPC dispatcher: raised and caught within
    # node.rpc.jsonrpc to produce an error response; never escapes the module.
    "node.rpc.jsonrpc._BadRequest",
    # Control flow out of heavy RPC work: it must unwind through the handler's own code,
    # much of which catches ChainError (e.g. a failing transaction in a preview), and reach
    # the handler or the dispatcher, which add what was done and word it as LimitExceeded.
    "node.rpc.budget.WorkBudgetExceeded",
}


def _production_modules() -> list:
    modules = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        modules.append(package)
        for info in pkgutil.walk_packages(package.__path__, prefix=package_name + "."):
            if info.name.endswith("__main__"):
                continue
            modules.append(importlib.import_module(info.name))
    return modules


def _project_exceptions() -> list[type]:
    found: dict[str, type] = {}
    for module in _production_modules():
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return list(found.values())


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def test_collects_the_known_exceptions() -> None:
    names = {_dotted(c) for c in _project_exceptions()}
    assert "ledger.errors.ChainError" in names
    assert "contracts_vm.errors.VMError" in names
    assert len(names) > 30


def test_exception_names_are_unique_across_packages() -> None:
    by_name: dict[str, list[str]] = {}
    for cls in _project_exceptions():
        by_name.setdefault(cls.__name__, []).append(_dotted(cls))
    duplicates = {name: sorted(where) for name, where in by_name.items() if len(where) > 1}
    assert not duplicates, f"exception names defined more than once: {duplicates}"


def test_every_exception_is_a_chain_error() -> None:
    outside = sorted(_dotted(c) for c in _project_exceptions()
                     if not issubclass(c, ChainError) and _dotted(c) not in NOT_CHAIN_ERRORS)
    assert not outside, f"project exceptions not derived from ledger.errors.ChainError: {outside}"


def test_allowlist_is_current() -> None:
    names = {_dotted(c) for c in _project_exceptions()}
    stale = sorted(NOT_CHAIN_ERRORS - names)
    assert not stale, f"allowlisted exceptions that no longer exist: {stale}"
    chained = sorted(n for n in NOT_CHAIN_ERRORS if issubclass(_by_name(n), ChainError))
    assert not chained, f"allowlisted exceptions that are ChainErrors after all (drop them): {chained}"


def _by_name(dotted: str) -> type:
    return next(c for c in _project_exceptions() if _dotted(c) == dotted)
