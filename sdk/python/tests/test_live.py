"""The whole agent flow through the SDK against a running Pivota.

Needs PIVOTA_API_URL, PIVOTA_API_KEY (an agent that may buy from the
merchant) and PIVOTA_TEST_MERCHANT_ID (a merchant on the sandbox PSP
whose catalog has a product matching PIVOTA_TEST_QUERY, default
"mug").  make check runs it from tests/integration/test_sdk.c, which
sets PIVOTA_SDK_REQUIRE_LIVE=1 so that a missing server is a failure,
not a skip.

The flow runs search -> order -> pay -> get -> list -> track -> refund
(partial, then the rest) and the events feed; every step must pass.
"""

import os
import subprocess
import sys
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import pivota  # noqa: E402

URL = os.environ.get("PIVOTA_API_URL")
KEY = os.environ.get("PIVOTA_API_KEY")
MERCHANT = os.environ.get("PIVOTA_TEST_MERCHANT_ID")
QUERY = os.environ.get("PIVOTA_TEST_QUERY", "mug")
LIVE = bool(URL and KEY and MERCHANT)
WORKER = None
if os.environ.get("PV_BUILD_DIR") and os.environ.get("PIVOTA_DATABASE_URL"):
    WORKER = os.path.join(os.environ["PV_BUILD_DIR"], "bin", "pivota-worker")
elif os.environ.get("PIVOTA_SDK_REQUIRE_LIVE"):
    raise RuntimeError("PIVOTA_SDK_REQUIRE_LIVE is set but PV_BUILD_DIR or "
                       "PIVOTA_DATABASE_URL is not (the webhook test needs "
                       "the job worker)")
if os.environ.get("PIVOTA_SDK_REQUIRE_LIVE") and not LIVE:
    raise RuntimeError("PIVOTA_SDK_REQUIRE_LIVE is set but PIVOTA_API_URL, "
                       "PIVOTA_API_KEY or PIVOTA_TEST_MERCHANT_ID is not")

ADDRESS = {"name": "Ada Agent", "address_line1": "1 Main St",
           "city": "Springfield", "postal_code": "12345", "country": "US"}


@unittest.skipUnless(LIVE, "no live server configured")
class LiveFlowTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.p = pivota.Pivota(api_key=KEY, base_url=URL, max_retries=2)

    def find(self):
        """A product with a variant that has stock; that variant's id.

        in_stock_only keeps a product when any variant has stock, and an
        item without variant_id buys the default variant: name one.
        """
        r = self.p.search_products(QUERY, merchant_id=MERCHANT,
                                   in_stock_only=True, limit=20)
        self.assertEqual(r["status"], "success")
        for prod in r["products"]:
            for k in ("id", "title", "price", "in_stock", "variant_id",
                      "sku"):
                self.assertIn(k, prod)
            self.assertTrue(prod["in_stock"])
        for prod in r["products"]:
            for v in prod["variants"]:
                if v["in_stock"] and v["inventory_quantity"] >= 5:
                    return prod, v
        self.fail("nothing in stock matches %r" % QUERY)

    def order(self, prod, qty=1, key=None):
        prod, variant = prod
        return self.p.create_order(
            MERCHANT, [{"product_id": prod["id"],
                        "variant_id": variant["id"], "quantity": qty}],
            "ada@agents.example", ADDRESS, agent_session_id="sdk-test",
            idempotency_key=key)

    def test_health_and_account(self):
        h = self.p.health_check()
        self.assertEqual(h["status"], "ok")
        self.assertEqual(h["services"]["database"], "ok")
        m = self.p.list_merchants(limit=100)
        self.assertIn(MERCHANT, [x["merchant_id"] for x in m["merchants"]])
        rl = self.p.get_rate_limits()
        self.assertGreater(rl["limits"]["per_minute"], 0)
        a = self.p.get_analytics(days=7)
        self.assertEqual(len(a["analytics"]["daily_stats"]), 7)

    def test_search_order_pay_get_list_cancel_refund_track(self):
        found = self.find()
        prod, variant = found
        got = self.p.get_product(MERCHANT, prod["id"])["product"]
        self.assertEqual(got["id"], prod["id"])
        self.assertEqual(got["price"], prod["price"])

        cart = self.p.validate_cart(
            MERCHANT, [{"product_id": prod["id"], "variant_id": variant["id"],
                        "quantity": 2}], "US")
        self.assertTrue(cart["valid"], cart["errors"])
        self.assertEqual(cart["items"][0]["unit_price"], variant["price"])

        # Create: a retry with the same key is a replay, not a new order.
        key = "sdk-" + uuid.uuid4().hex
        o = self.order(found, 2, key)
        self.assertEqual(o["order_status"], "pending")
        self.assertRegex(o["order_id"], r"^ORD_[0-9A-F]{16}$")
        self.assertEqual(o["total_minor"], cart["pricing"]["total_minor"])
        again = self.order(found, 2, key)
        self.assertEqual(again["order_id"], o["order_id"])
        hdrs = {k.lower(): v for k, v in
                self.p.last_response["headers"].items()}
        self.assertEqual(hdrs.get("idempotent-replayed"), "true")
        oid = o["order_id"]

        # A declined card is a typed 402 with the PSP's decline code.
        with self.assertRaises(pivota.PaymentDeclinedError) as cm:
            self.p.pay(oid, "pm_card_chargeDeclined")
        e = cm.exception
        self.assertEqual((e.status, e.type, e.decline_code),
                         (402, "payment_error", "generic_decline"))
        self.assertTrue(e.detail)
        self.assertTrue(e.request_id)

        pay = self.p.pay(oid, "pm_card_visa")
        self.assertEqual(pay["payment_status"], "succeeded")
        self.assertEqual(pay["amount"], o["total"])
        self.assertEqual(self.p.get_payment(pay["payment_id"])
                         ["payment"]["status"], "succeeded")

        order = self.p.get_order(oid)["order"]
        self.assertEqual((order["status"], order["payment_status"]),
                         ("paid", "succeeded"))
        self.assertEqual(order["items"][0]["quantity"], 2)
        listed = self.p.list_orders(merchant_id=MERCHANT, limit=100)
        self.assertIn(oid, [x["order_id"] for x in listed["orders"]])

        # Paid orders are refunded, not cancelled.
        with self.assertRaises(pivota.ConflictError) as cm:
            self.p.cancel_order(oid, reason="changed my mind")
        self.assertEqual(cm.exception.code, "order_not_cancellable")

        self._track(oid)
        self._refund(oid, o)

    def _track(self, oid):
        t = self.p.track_order(oid)
        self.assertEqual(t["tracking"]["order_id"], oid)
        self.assertEqual(t["tracking"]["delivery_status"], "not_shipped")
        it = self.p.list_in_transit(merchant_id=MERCHANT)
        self.assertNotIn(oid, [x["order_id"] for x in it["orders"]])

    def _refund(self, oid, o):
        r = self.p.refund(oid, amount="1.00", reason="damaged")
        self.assertEqual(r["order_id"], oid)
        self.assertTrue(r["is_partial"])
        self.assertEqual(r["new_order_status"], "partially_refunded")
        r = self.p.refund(oid)
        self.assertEqual(r["new_order_status"], "refunded")
        self.assertEqual(r["refunded_total"], o["total"])
        with self.assertRaises(pivota.ConflictError):
            self.p.refund(oid, amount="1.00")
        self.assertEqual(self.p.get_order(oid)["order"]["status"],
                         "refunded")

    def test_cancel_unpaid(self):
        o = self.order(self.find())
        c = self.p.cancel_order(o["order_id"], reason="testing")
        self.assertEqual(c["order_status"], "cancelled")
        self.assertEqual(self.p.get_order(o["order_id"])["order"]["status"],
                         "cancelled")
        with self.assertRaises(pivota.ConflictError):
            self.p.pay(o["order_id"], "pm_card_visa")

    def test_events_feed(self):
        o = self.order(self.find())
        self.p.cancel_order(o["order_id"])
        seen = []
        for _ in range(50):  # the feed shows an event a moment after commit
            seen, after = [], None
            while True:
                page = self.p.list_events(after=after, limit=100)
                seen += [e for e in page["events"]
                         if e["order_id"] == o["order_id"]]
                if not page["has_more"] or not page["events"]:
                    break
                after = page["events"][-1]["id"]
            if len(seen) >= 2:
                break
            time.sleep(0.1)
        self.assertEqual([(e["type"], e["seq"]) for e in seen],
                         [("order.created", 1), ("order.cancelled", 2)])
        self.assertEqual(seen[1]["data"]["order"]["status"], "cancelled")

    @unittest.skipUnless(WORKER, "no PV_BUILD_DIR/PIVOTA_DATABASE_URL: "
                         "webhook delivery needs the job worker")
    def test_webhook_delivered_and_verified(self):
        got = []

        class Hook(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                got.append((self.headers.get("Pivota-Signature"),
                            self.rfile.read(n)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        srv = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        threading.Thread(target=srv.serve_forever, args=(0.05,),
                         daemon=True).start()
        w = self.p.register_webhook(
            "http://127.0.0.1:%d/hook" % srv.server_address[1],
            ["order.created"])
        try:
            o = self.order(self.find())
            for _ in range(30):
                run = subprocess.run([WORKER, "--once", "--id", "sdk-test"],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
                self.assertEqual(run.returncode, 0, run.stderr)
                if any(o["order_id"].encode() in body for _, body in got):
                    break
                time.sleep(0.1)
        finally:
            self.p.delete_webhook(w["webhook"]["id"])
            srv.shutdown()
            srv.server_close()
        mine = [(h, b) for h, b in got if o["order_id"].encode() in b]
        self.assertEqual(len(mine), 1, "deliveries: %r" % got)
        header, body = mine[0]
        event = pivota.construct_event(body, header, w["secret"])
        self.assertEqual((event["type"], event["order_id"]),
                         ("order.created", o["order_id"]))
        with self.assertRaises(pivota.WebhookSignatureError):
            pivota.construct_event(body + b" ", header, w["secret"])
        with self.assertRaises(pivota.WebhookSignatureError):
            pivota.construct_event(body, header, "whsec_" + "0" * 64)

    def test_errors_are_typed(self):
        with self.assertRaises(pivota.NotFoundError) as cm:
            self.p.get_order("ORD_0000000000000000")
        self.assertEqual(cm.exception.param, "order_id")
        self.assertTrue(cm.exception.request_id.startswith("req_"))
        with self.assertRaises(pivota.InvalidRequestError) as cm:
            self.p.list_orders(limit=1000)
        self.assertEqual((cm.exception.status, cm.exception.param),
                         (400, "limit"))
        bad = pivota.Pivota(api_key="ak_live_" + "0" * 64, base_url=URL)
        with self.assertRaises(pivota.AuthenticationError) as cm:
            bad.list_orders()
        self.assertEqual(cm.exception.status, 401)
        bearer = pivota.Pivota(api_key=KEY, base_url=URL, bearer=True)
        self.assertEqual(bearer.get_rate_limits()["status"], "success")

    def test_webhook_endpoints(self):
        w = self.p.register_webhook("https://agent.example/hooks",
                                    ["order.paid"])
        self.assertTrue(w["secret"].startswith("whsec_"))
        wid = w["webhook"]["id"]
        self.assertIn(wid, [x["id"] for x in
                            self.p.list_webhooks()["webhooks"]])
        self.assertTrue(self.p.delete_webhook(wid)["deleted"])
        with self.assertRaises(pivota.NotFoundError):
            self.p.delete_webhook(wid)


if __name__ == "__main__":
    unittest.main()
