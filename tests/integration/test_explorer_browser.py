"""End to end: a real devnet, an order and a warranty story, the explorer in headless Chromium.

The browser is Debian's ``chromium`` with ``chromium-driver``, driven by Selenium; nothing
is downloaded. The test skips, saying why, when either binary or the selenium package is
missing (``.ci/run`` installs them where apt is available). It checks what a person would
see on each page, that the latest-blocks list updates live over the websocket, and that
the browser logged no error; then the reported faults one by one: a deep link in a fresh
browser, a failed transaction marked failed, amounts in major units, every page at a
phone's 390 px without horizontal overflow, search by brand:serial, an unknown hash said
plainly, and a node that goes down and comes back (last: it kills a node of the devnet). It saves its screenshots under pytest's temporary directory,
or over the ones the docs link to (``docs/screenshots/``) when SHOPCHAIN_SCREENSHOTS=1,
so an ordinary test run leaves the working tree clean.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time

import pytest

from contracts_vm.system import review_message
from ledger import ring
from ledger.crypto import SigningKey, sha256
from tests.nethelpers import Devnet
from contracts_vm.system import DAY, warranty_claim_commitment

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DOCS_SCREENSHOT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "docs", "screenshots")
SCREENSHOT_DIR = (DOCS_SCREENSHOT_DIR if os.environ.get("SHOPCHAIN_SCREENSHOTS") == "1"
                  else os.path.join(os.environ.get("TMPDIR", "/tmp"), "shopchain-screenshots"))
#: Longest wait for something to appear on a page (the machine is shared and slow at times).
PAGE_WAIT_S = 45.0
WINDOW = (1280, 1000)
#: A phone's width (CSS pixels): no page may be wider.
PHONE_WIDTH = 390
#: The serial the story's unit is registered under: its id is the SHA-256 of this text.
SERIAL = "acme:serial-000123"
#: Tallest screenshot saved (pixels); longer pages are cut.
MAX_SHOT_HEIGHT = 2400
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                  "--disable-default-apps", "--disable-extensions")


def _browser_missing() -> str | None:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            return f"{path} not found: install the Debian package {package} (apt-get install -y chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is missing: pip install -e '.[test]'"
    return None


def h(text: str) -> bytes:
    return sha256(text.encode())


def run_stories(net: Devnet) -> dict:
    """An order from terms to a verified review, and a unit's warranty life, via node.client."""
    client = net.client(0)
    merchant, buyer, carrier = net.keys["merchant-acme"], net.keys["buyer-1"], net.keys["carrier"]
    centre, arbiter, next_owner = net.keys["service-center"], net.keys["arbiter"], net.keys["buyer-3"]
    product = h("acme/tent-ultralight-2p")
    review_key = SigningKey.from_label("explorer-test/review-key")
    client.transact(merchant, "orders", "set_terms", 2 * DAY, 3 * DAY, 5 * DAY, 7 * DAY, 14 * DAY, 1000, 365 * DAY, arbiter.public_key)
    terms = bytes.fromhex(client.call("orders", "terms_hash_of", merchant.public_key)[2:])
    placed = client.transact(buyer, "orders", "place", merchant.public_key, [[product, 1, 24_900, terms]], h("pii-root"),
                             h("payload"), sha256(review_key.public_key), b"", b"", b"")
    order_id = placed["return_value"]
    client.transact(merchant, "orders", "accept", order_id, carrier.public_key, h("label"))
    client.transact(carrier, "orders", "ship", order_id, h("tracking"), False)
    client.transact(carrier, "orders", "deliver", order_id, h("proof-of-delivery"))
    client.transact(buyer, "orders", "confirm", order_id)
    # a second buyer's completed order, so the review can hide in a ring of two
    other_buyer, other_key = net.keys["buyer-2"], SigningKey.from_label("explorer-test/review-key-2")
    other = client.transact(other_buyer, "orders", "place", merchant.public_key, [[product, 1, 9_900, terms]],
                            h("pii-2"), h("payload-2"), sha256(other_key.public_key), b"", b"", b"")["return_value"]
    client.transact(merchant, "orders", "accept", other, carrier.public_key, h("label-2"))
    client.transact(carrier, "orders", "ship", other, h("tracking-2"), False)
    client.transact(carrier, "orders", "deliver", other, h("proof-of-delivery-2"))
    client.transact(other_buyer, "orders", "confirm", other)
    client.transact(buyer, "reviews", "announce_key", order_id, review_key.public_key)
    client.transact(other_buyer, "reviews", "announce_key", other, other_key.public_key)
    scores = [5, 4, 5, 4, 5]
    ring_ids = sorted([order_id, other])
    ring_keys = [{order_id: review_key, other: other_key}[i].public_key for i in ring_ids]
    message = review_message(net.genesis.chain_id, ring_ids, 0, scores, h("great tent"), False, 1)
    image, signature = ring.sign(ring.secret_scalar(review_key.seed), ring_keys, message)
    client.transact(net.keys["auditor"], "reviews", "publish", ring_ids, 0, scores, h("great tent"), False, image,
                    signature)   # relayed: the buyer's account sends nothing of the review

    unit = h(SERIAL)
    client.transact(merchant, "warranty", "register_unit", unit, product)
    client.transact(buyer, "warranty", "activate", unit, order_id, 0)
    client.transact(merchant, "warranty", "authorize_service", centre.public_key, True)
    client.transact(centre, "warranty", "record_service", unit, "INSPECT", h("inspection report"), True, 0)
    claim = client.transact(buyer, "warranty", "open_claim", unit, h("zip broken"))["return_value"]
    client.transact(centre, "warranty", "decide_claim", claim, True)
    client.transact(centre, "warranty", "fulfil_claim", claim, "REPAIR", h("zip replaced"))
    code = b"one-time-claim-code"
    expiry = client.status()["latest_block_time_ms"] // 1000 + DAY
    client.transact(buyer, "warranty", "offer_transfer", unit, sha256(code), expiry)
    committed = client.transact(next_owner, "warranty", "commit_claim", unit,
                                warranty_claim_commitment(unit, next_owner.public_key, code))
    client.wait_for_height(committed["height"] + 1)
    client.transact(next_owner, "warranty", "claim_transfer", unit, code)
    client.transact(next_owner, "warranty", "set_flag", unit, "LOST", True)
    # A transaction the contract refuses: committed, with a failed receipt (and its fee paid).
    failed = client.wait(client.send(net.keys["buyer-3"], "ledger", "transfer", net.keys["merchant-globex"].public_key,
                                     10 ** 15))
    assert failed["status"] == "failed" and "insufficient balance" in failed["error"], failed
    return {"failed_tx": failed["tx_id"], "failed_height": failed["height"], "serial": SERIAL,"order_id": order_id, "place_tx": placed["tx_id"], "place_height": placed["height"],
            "unit": "0x" + unit.hex(), "claim": claim, "merchant": "0x" + merchant.public_key.hex(),
            "buyer": "0x" + buyer.public_key.hex(), "next_owner": "0x" + next_owner.public_key.hex()}


def new_browser(profile_dir):
    """A headless Chromium with its own (empty) profile: no cache, no history, a fresh tab."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a browser or driver
    options = Options()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    options.add_argument(f"--window-size={WINDOW[0]},{WINDOW[1]}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(PAGE_WAIT_S)
    return driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    driver = new_browser(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def net(tmp_path_factory, browser):
    network = Devnet.start(str(tmp_path_factory.mktemp("explorer") / "devnet"))
    yield network
    network.stop()


@pytest.fixture(scope="module")
def story(net):
    return run_stories(net)


def wait_text(driver, css: str, *needles: str) -> str:
    """The text of ``css`` once it contains every needle (fails with what it found)."""
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + PAGE_WAIT_S
    text = ""
    while time.monotonic() < deadline:
        found = driver.find_elements(By.CSS_SELECTOR, css)
        text = " ".join(e.text for e in found)
        if found and all(n in text for n in needles):
            return text
        errors = driver.find_elements(By.ID, "page-error")
        if errors:
            raise AssertionError(f"the page shows an error instead of {css}: {errors[0].text}")
        time.sleep(0.2)
    raise AssertionError(f"{css} never showed {needles}; it showed {text[:500]!r}")


def open_page(driver, base: str, route: str) -> None:
    before = driver.execute_script("return document.body.dataset.ready || ''")
    if driver.current_url == f"{base}/{route}":
        driver.refresh()   # the same URL again fires no hashchange: nothing would render
    else:
        driver.get(f"{base}/{route}")
    # A hash change on the same document does not reload: wait for this route's own render.
    wait_for(driver, lambda: driver.execute_script("return document.body.dataset.ready || ''") not in ("", before),
             f"the page {route} to render")


def wait_for(driver, condition, what: str = "condition") -> None:
    deadline = time.monotonic() + PAGE_WAIT_S
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def shot(driver, name: str) -> None:
    """The whole page (not just the viewport), at most MAX_SHOT_HEIGHT pixels tall."""
    os.makedirs(SCREENSHOT_DIR, exist_ok=True)
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], MAX_SHOT_HEIGHT), "scale": 1}
    data = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
    with open(os.path.join(SCREENSHOT_DIR, name), "wb") as fh:
        fh.write(base64.b64decode(data["data"]))


def console_errors(driver) -> list[str]:
    return [f"{e['level']}: {e['message']}" for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_explorer_shows_the_stories_and_updates_live(net, browser, story):
    driver, base = browser, net.urls[1]

    driver.get(base + "/")
    wait_text(driver, "#live-state", "live")
    wait_text(driver, "#latest-txs-body", "warranty.set_flag", "warranty.claim_transfer")
    wait_text(driver, "#chain-id", "shopchain-devnet")
    first_top = int(driver.execute_script(
        "return document.querySelector('#latest-blocks-body tr').dataset.height"))
    wait_for(driver, lambda: int(driver.execute_script(
        "return document.querySelector('#latest-blocks-body tr').dataset.height")) > first_top + 1,
        "the latest-blocks list to grow over the websocket without a reload")
    assert int(driver.find_element("id", "head-height").text) > first_top
    # A transaction committed while the page is open shows up in the latest transactions, live.
    live_tx = net.client(2).transact(net.keys["buyer-2"], "ledger", "transfer", net.keys["merchant-globex"].public_key, 7)
    wait_text(driver, "#latest-txs-body", "ledger.transfer")
    assert live_tx["tx_id"][:10] in driver.find_element("id", "latest-txs-body").text
    shot(driver, "home.png")

    open_page(driver, base, f"#/block/{story['place_height']}")
    cert = wait_text(driver, "#certificate", "Signed by")
    names = {v.name for v in net.genesis.validators}
    signers = [n.strip() for n in driver.find_element("id", "signer-names").text.split(",")]
    assert len(signers) >= 3 and set(signers) <= names, cert
    wait_text(driver, "main", "orders.place")
    shot(driver, "block.png")

    open_page(driver, base, f"#/tx/{story['place_tx']}")
    wait_text(driver, "#receipt", "committed and succeeded", f"order {story['order_id']}")
    wait_text(driver, "#events", "orders.OrderPlaced", "ledger.Locked", " USD")   # amounts in their currency
    shot(driver, "transaction.png")

    open_page(driver, base, f"#/order/{story['order_id']}")
    wait_text(driver, "#order-state", "COMPLETED")
    wait_text(driver, "#order-lines", "unit price", "249.00 USD")
    wait_text(driver, "main", "return window closes after", " (in 1", "Deadlines are in block time")  # a local date, ~14 days left
    timeline = wait_text(driver, "#order-timeline", "OrderPlaced", "OrderAccepted", "Shipped", "Delivered",
                         "ReceiptConfirmed", "ReviewKeyAnnounced", "WarrantyActivated")
    assert "ReviewPublished" not in timeline   # the review names a ring of orders, not this one
    assert timeline.index("OrderPlaced") < timeline.index("Delivered") < timeline.index("ReceiptConfirmed")
    steps = driver.find_elements("css selector", "#order-steps li.done")
    assert [s.text for s in steps] == ["PLACED", "ACCEPTED", "SHIPPED", "DELIVERED"]
    shot(driver, "order-tracker.png")

    open_page(driver, base, f"#/warranty/{story['unit']}")
    owners = wait_text(driver, "#owners", "bought (order", "transfer claimed")
    assert story["buyer"][:10] in owners and story["next_owner"][:10] in owners
    wait_text(driver, "#service-history", "#1 INSPECT", "under warranty")
    wait_text(driver, "#claims", "FULFILLED", "REPAIR")
    wait_text(driver, "#passport-flags", "LOST")
    wait_text(driver, "main", "under warranty")
    shot(driver, "warranty-passport.png")

    open_page(driver, base, "#/merchants")
    row = wait_text(driver, f"#merchant-ratings tr[data-merchant='{story['merchant']}']", "Acme", "5.00")
    assert " 1 " in f" {row} ", row
    shot(driver, "merchant-ratings.png")

    open_page(driver, base, f"#/account/{story['merchant']}")
    wait_text(driver, "main", "MERCHANT", "Merchant rating", "verified reviews")
    wait_text(driver, "#account-balances", " USD")

    open_page(driver, base, "#/validators")
    wait_text(driver, "main", "node0", "node3", "connected")

    errors = console_errors(driver)
    assert not errors, errors


def main_text(driver) -> str:
    return driver.find_element("id", "main").text


def test_a_deep_link_in_a_new_browser_session_shows_the_order_against_the_chain_head(net, story, tmp_path):
    """The quickstart's link, typed into a fresh browser: the page must know the head before it draws."""
    driver = new_browser(tmp_path / "fresh-profile")
    try:
        height = net.client(1).status()["height"]
        driver.get(f"{net.urls[1]}/explorer#/order/{story['order_id']}")   # the form links are written in
        wait_text(driver, "#order-state", "COMPLETED")
        found = re.search(r"the latest block, (\d+), is of", wait_text(driver, "main", "Deadlines are in block time"))
        assert found and int(found.group(1)) >= height, f"expected the head (>= {height}), found {found and found.group(0)}"
        wait_text(driver, "main", "return window closes after", " (in 1")   # counted from the head's time, not 1970
        assert console_errors(driver) == []
    finally:
        driver.quit()


def test_amounts_are_in_major_units_with_the_raw_value_kept(net, browser, story):
    driver, base = browser, net.urls[1]
    open_page(driver, base, f"#/order/{story['order_id']}")
    amount = driver.find_element("css selector", "#order-amount .money")
    wait_for(driver, lambda: amount.text == "249.00 USD", "the order's amount in dollars")
    assert amount.get_attribute("title") == "24900 minor units of USD"
    wait_text(driver, "#order-lines", "249.00 USD")
    wait_text(driver, "#order-escrow", "USD")   # the holdback still in escrow, in dollars too

    open_page(driver, base, f"#/tx/{story['place_tx']}")
    args = wait_text(driver, "main", "lines", "\u00d7 1 at 249.00 USD")   # the call's arguments, by name
    assert "24900" not in args, args
    fee = int(net.client(1).request("chain_getReceipt", story["place_tx"])["fee"])
    assert fee > 0
    wait_text(driver, "#tx-fee", f"{fee // 100}.{fee % 100:02d} USD")

    open_page(driver, base, f"#/account/{story['merchant']}")
    balance = int(net.client(1).account(bytes.fromhex(story["merchant"][2:]))["balance"])
    shown = driver.find_element("css selector", "#account-balances .money")
    assert shown.get_attribute("title") == f"{balance} minor units of USD"
    assert shown.text == f"{balance // 100:,}.{balance % 100:02d} USD"
    assert console_errors(driver) == []


def test_a_failed_transaction_is_marked_failed_with_its_reason(net, browser, story):
    driver, base = browser, net.urls[1]
    tx = story["failed_tx"]
    open_page(driver, base, f"#/block/{story['failed_height']}")
    row = wait_text(driver, f"#block-txs tr[data-tx='{tx}']", "ledger.transfer", "failed", "insufficient balance")
    assert driver.find_element("css selector", f"#block-txs tr[data-tx='{tx}']").get_attribute("data-status") == "failed", row
    open_page(driver, base, f"#/tx/{tx}")
    assert "failed" in driver.find_element("css selector", "main h1").text
    wait_text(driver, "#tx-failure", "committed but failed", "insufficient balance")
    wait_text(driver, "#tx-status", "failed", "insufficient balance")
    wait_text(driver, "main", "10,000,000,000,000.00 USD")   # the amount it tried to send
    open_page(driver, base, "#/")
    wait_text(driver, f"#latest-txs-body tr[data-tx='{tx}']", "failed", "insufficient balance")
    ok_rows = driver.find_elements("css selector", "#latest-txs-body tr[data-status='ok']")
    assert ok_rows and all("failed" not in r.text for r in ok_rows)
    shot(driver, "failed-transaction.png")
    assert console_errors(driver) == []


def test_every_page_fits_a_phone_without_horizontal_scrolling(net, browser, story):
    driver, base = browser, net.urls[1]
    routes = {
        "#/": "#latest-txs-body tr", f"#/block/{story['place_height']}": "#certificate",
        f"#/block/{story['failed_height']}": "#block-txs", f"#/tx/{story['place_tx']}": "#events",
        f"#/tx/{story['failed_tx']}": "#tx-failure", f"#/account/{story['merchant']}": "#account-balances",
        f"#/order/{story['order_id']}": "#order-lines", "#/order": "form.lookup", "#/order/999999": "#not-found",
        f"#/warranty/{story['unit']}": "#claims", "#/warranty": "form.lookup", "#/merchants": "#merchant-ratings",
        "#/validators": "#validator-schedule", "#/governance": "#governance-settings", "#/proposal/0": "#proposal-missing",
        "#/tx/0x" + "ab" * 32: "#not-found", "#/block/0x" + "cd" * 32: "#not-found", "#/hash/0x" + "ef" * 32: "#not-found",
    }
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": PHONE_WIDTH, "height": 844, "deviceScaleFactor": 1, "mobile": False})
    try:
        too_wide = {}
        for route, ready in routes.items():
            open_page(driver, base, route)
            wait_for(driver, lambda: driver.find_elements("css selector", ready), f"{ready} on {route}")
            inner, client, scroll = driver.execute_script(
                "return [window.innerWidth, document.documentElement.clientWidth, document.documentElement.scrollWidth]")
            assert inner == PHONE_WIDTH, f"the window is {inner} px wide, expected the phone's {PHONE_WIDTH}"
            if scroll > client:
                widest = driver.execute_script(
                    "return Array.from(document.querySelectorAll('body *')).filter((e) => e.getBoundingClientRect().right > "
                    "document.documentElement.clientWidth).slice(-3).map((e) => e.tagName + (e.id ? '#' + e.id : '') + "
                    "(e.className ? '.' + e.className : '') + ' ' + e.textContent.slice(0, 40))")
                too_wide[route] = (scroll, widest)
        assert not too_wide, f"pages wider than a {PHONE_WIDTH} px phone (scroll width, widest elements): {too_wide}"
        open_page(driver, base, f"#/order/{story['order_id']}")
        shot(driver, "order-tracker-phone.png")
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert console_errors(driver) == []


def test_search_opens_a_passport_by_brand_and_serial(net, browser, story):
    driver, base = browser, net.urls[1]
    open_page(driver, base, "#/")
    # The page's SHA-256 is its own code (crypto.subtle needs https): it must agree with Python's.
    for text in ["", "abc", SERIAL, "x" * 55, "y" * 56, "z" * 64, "z" * 119, "marque:numéro-✓"]:
        assert driver.execute_script("return sha256Hex(arguments[0])", text) == "0x" + hashlib.sha256(text.encode()).hexdigest(), text
    box = driver.find_element("id", "search-input")
    box.clear()
    box.send_keys(SERIAL + "\n")
    wait_text(driver, "#passport-serial", SERIAL)
    wait_text(driver, "#passport", story["unit"])
    assert driver.execute_script("return location.hash") == f"#/warranty/{story['unit']}"
    wait_text(driver, "#claims", "FULFILLED")
    box = driver.find_element("id", "search-input")
    box.clear()
    box.send_keys("acme:no-such-serial\n")
    wait_text(driver, "#not-found", "No passport for acme:no-such-serial", "0x" + hashlib.sha256(b"acme:no-such-serial").hexdigest())
    assert console_errors(driver) == []


def test_an_unknown_hash_is_said_plainly(net, browser, story):
    driver, base = browser, net.urls[1]
    unknown = "0x" + "ab" * 32
    open_page(driver, base, "#/")
    box = driver.find_element("id", "search-input")
    box.clear()
    box.send_keys(unknown + "\n")
    wait_text(driver, "#not-found", f"No block, transaction, warranty passport or account with hash {unknown}")
    assert "null" not in main_text(driver), main_text(driver)
    for route, expected in ((f"#/tx/{unknown}", f"No transaction with id {unknown}"),
                            (f"#/block/{unknown}", f"No block with hash {unknown}")):
        open_page(driver, base, route)
        wait_text(driver, "#not-found", expected)
        assert "null" not in main_text(driver), main_text(driver)
    # A hash that does name something opens it.
    box = driver.find_element("id", "search-input")
    box.clear()
    box.send_keys(story["place_tx"] + "\n")
    wait_text(driver, "#receipt", "committed and succeeded")
    assert driver.execute_script("return location.hash") == f"#/tx/{story['place_tx']}"
    assert console_errors(driver) == []


def test_a_node_that_goes_down_is_named_and_the_page_recovers_by_itself(net, browser, story):
    """Last in the module: it kills node 3 (three of four still commit) and starts it again."""
    driver, base = browser, net.urls[3]
    open_page(driver, base, "#/validators")
    wait_text(driver, "#validator-set", "this node")
    net.kill(3)
    try:
        driver.execute_script("location.hash = '#/merchants'")
        message = wait_text(driver, "#node-unreachable", f"annot reach the node at {base}", "down or restarting", "retrying")
        assert "Failed to fetch" not in message, message
        wait_text(driver, "#live-state", "unreachable")
    finally:
        net.restart(3)
    wait_text(driver, "#merchant-ratings", "Acme")   # no reload, no click: the page retried by itself
    assert not driver.find_elements("id", "node-unreachable")
    wait_for(driver, lambda: driver.find_element("id", "live-state").get_attribute("class") == "on", "the page to be live again")
    driver.get_log("browser")   # the refused connections while it was down are expected console errors
