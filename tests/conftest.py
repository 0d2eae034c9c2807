"""Shared pytest configuration: the --runslow switch, and the unit/integration line.

Layout: tests/<package>/ mirrors the code (ledger, vm, commerce, consensus, p2p, node,
cli, devnet); tests/integration/ holds the files whose every test is integration-marked
(collection fails if one is not). Every test without the ``integration`` mark also gets
``unit``, so ``-m unit`` and ``-m integration`` split the run in two exact halves.

How the line is kept: a test marked ``integration`` may start processes and open
sockets (loopback servers, devnets, browsers). Every other test is a unit test and runs
in-process: while its setup, call and teardown run (module fixtures included, since they
are built during the first user's setup), ``subprocess.Popen`` and socket ``bind`` /
``connect`` raise ``UnitTestLeftProcess``. So ``pytest -m "not integration"`` is a
fast, deterministic run, and a test that starts a process without the mark fails at
once, naming the mark, instead of slowly turning the unit run into an integration run.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_VECTORS = os.path.join(os.path.dirname(PROJECT_ROOT), "shared", "vectors")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="also run long soak/simulation tests")


INTEGRATION_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "integration")


def unmarked_integration_items(items: list[pytest.Item]) -> list[str]:
    """Tests under tests/integration/ without the ``integration`` mark (there must be none)."""
    return [item.nodeid for item in items
            if str(item.path).startswith(INTEGRATION_DIR + os.sep) and item.get_closest_marker("integration") is None]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = unmarked_integration_items(items)
    if unmarked:
        raise pytest.UsageError("tests/integration/ holds only tests marked integration (pytestmark = "
                                "pytest.mark.integration); unmarked: " + ", ".join(unmarked))
    # `-m unit` selects exactly the in-process tests: every test without the integration mark.
    for item in items:
        if item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.unit)
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="long run: use --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


class UnitTestLeftProcess(RuntimeError):
    """A test without the ``integration`` mark tried to start a process or open a socket."""


def _refuse(what: str):
    def refuse(*_args, **_kwargs):
        raise UnitTestLeftProcess(f"a unit test {what}; mark it @pytest.mark.integration "
                                  "(or pytestmark = pytest.mark.integration for the module)")
    return refuse


@contextlib.contextmanager
def _in_process_only(item: pytest.Item) -> Iterator[None]:
    if item.get_closest_marker("integration") is not None:
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "__init__", _refuse("started a process"))
        patch.setattr(socket.socket, "bind", _refuse("bound a socket"))
        patch.setattr(socket.socket, "connect", _refuse("connected a socket"))
        patch.setattr(socket.socket, "connect_ex", _refuse("connected a socket"))
        yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Setup, call and teardown of one test, module fixtures it builds included."""
    with _in_process_only(item):
        return (yield)
