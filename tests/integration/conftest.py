"""One real 4-validator devnet shared by the integration modules that only read and submit.

Starting four node processes is the expensive part of a devnet test, so modules whose
tests stay independent on a common chain (each uses its own accounts, reads nonces and
balances when it starts, and leaves every node running or restarted and caught up) take
``shared_devnet`` instead of starting their own: today tests/integration/test_cli_integration.py
and tests/integration/test_node_integration.py. A module that needs its own config, a
clean chain or exact global counts (the explorer browser test counts a merchant's
reviews, which the CLI stories also post) keeps its own ``Devnet.start``.

The network is started by the first module that asks for it and stopped right after the
last module of the run that uses it (so it does not idle beside the tests that follow,
some of which measure rates); the stop must be clean (SIGTERM, store flushed), as before.
"""

from __future__ import annotations

import pytest

from tests.nethelpers import Devnet

_SHARED: dict = {"net": None, "last_module": None}


def pytest_collection_finish(session: pytest.Session) -> None:
    users = [item for item in session.items if "shared_devnet" in getattr(item, "fixturenames", ())]
    _SHARED["last_module"] = users[-1].module.__name__ if users else None


def _stop_shared() -> list[bool] | None:
    net, _SHARED["net"] = _SHARED["net"], None
    return net.stop() if net is not None else None


@pytest.fixture(scope="module")
def shared_devnet(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    if _SHARED["net"] is None:
        _SHARED["net"] = Devnet.start(str(tmp_path_factory.mktemp("shared") / "devnet"))
    yield _SHARED["net"]
    if request.module.__name__ == _SHARED["last_module"]:
        # SIGTERM must stop every node cleanly (store flushed and closed), not by the SIGKILL fallback.
        assert _stop_shared() == [True] * 4


def pytest_sessionfinish(session: pytest.Session) -> None:
    _stop_shared()  # a run cut short (-x, ^C) before the last user still leaves no processes
