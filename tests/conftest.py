"""Shared pytest configuration: the --runslow switch, and the unit/integration line.

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
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
