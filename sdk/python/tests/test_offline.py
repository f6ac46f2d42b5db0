"""The client's transport against a scripted local HTTP server.

Retries, Idempotency-Key reuse, Retry-After, typed errors and webhook
signatures, without a Pivota server: a ThreadingHTTPServer on loopback
answers from a script and records every request it got.
"""

import json
import os
import socket
import sys
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import pivota  # noqa: E402
from pivota import webhooks  # noqa: E402


def error_body(status, code, typ, detail="nope", param=None):
    return {"status": "error", "detail": detail,
            "error": {"type": typ, "code": code, "message": detail,
                      "param": param, "request_id": "req_test_%d" % status}}


class Script(BaseHTTPRequestHandler):
    """Answers each request with the next (status, headers, body)."""

    def log_message(self, *a):
        pass

    def handle_one(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        srv = self.server
        srv.seen.append({"method": self.command, "path": self.path,
                         "headers": self.headers,
                         "body": body})
        status, headers, out = srv.script.pop(0) if srv.script else (
            500, {}, error_body(500, "internal_error", "api_error"))
        raw = json.dumps(out).encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = do_DELETE = handle_one


class TransportTest(unittest.TestCase):
    def setUp(self):
        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), Script)
        self.srv.script = []
        self.srv.seen = []
        self.t = threading.Thread(target=self.srv.serve_forever,
                                  args=(0.05,), daemon=True)
        self.t.start()
        self.sleeps = []
        self.client = pivota.Pivota(
            api_key="ak_live_" + "0" * 64,
            base_url="http://127.0.0.1:%d/ignored/path" %
            self.srv.server_address[1],
            sleep=self.sleeps.append, max_retries=3)

    def tearDown(self):
        self.srv.shutdown()
        self.srv.server_close()

    def test_post_retries_5xx_with_one_idempotency_key(self):
        ok = {"status": "success", "order_id": "ORD_0123456789ABCDEF"}
        self.srv.script = [(503, {}, error_body(503, "service_unavailable",
                                                "api_error")),
                           (500, {}, error_body(500, "internal_error",
                                                "api_error")),
                           (200, {}, ok)]
        got = self.client.create_order("mer_x", [{"product_id": "p",
                                                  "quantity": 1}],
                                       "a@b.example", {"name": "A"})
        self.assertEqual(got, ok)
        self.assertEqual(len(self.srv.seen), 3)
        keys = {r["headers"]["Idempotency-Key"] for r in self.srv.seen}
        self.assertEqual(len(keys), 1)
        self.assertRegex(keys.pop(), r"^[0-9a-f-]{36}$")
        self.assertEqual(self.srv.seen[0]["path"], "/agent/v1/orders/create")
        self.assertEqual(self.srv.seen[0]["headers"]["X-API-Key"],
                         "ak_live_" + "0" * 64)
        self.assertEqual(len(self.sleeps), 2)
        self.assertTrue(all(0 <= s <= 8 for s in self.sleeps))

    def test_each_post_gets_its_own_key(self):
        ok = {"status": "success"}
        self.srv.script = [(200, {}, ok), (200, {}, ok)]
        self.client.cancel_order("ORD_A")
        self.client.cancel_order("ORD_A")
        a, b = (r["headers"]["Idempotency-Key"] for r in self.srv.seen)
        self.assertNotEqual(a, b)
        self.assertEqual(self.srv.seen[0]["body"], b"{}")

    def test_caller_key_is_sent(self):
        self.srv.script = [(200, {}, {"status": "success"})]
        self.client.pay("ORD_A", "pm_card_visa", idempotency_key="k-1")
        r = self.srv.seen[0]
        self.assertEqual(r["headers"]["Idempotency-Key"], "k-1")
        self.assertEqual(json.loads(r["body"]),
                         {"order_id": "ORD_A",
                          "payment_method": {"type": "card",
                                             "token": "pm_card_visa"}})

    def test_429_honours_retry_after(self):
        self.srv.script = [(429, {"Retry-After": "2"},
                            error_body(429, "rate_limit_exceeded",
                                       "rate_limit_error")),
                           (200, {}, {"status": "success", "orders": []})]
        self.client.list_orders()
        self.assertEqual(len(self.sleeps), 1)
        self.assertGreaterEqual(self.sleeps[0], 2)
        self.assertLess(self.sleeps[0], 2.2)

    def test_429_with_long_retry_after_raises(self):
        self.srv.script = [(429, {"Retry-After": "3600"},
                            error_body(429, "daily_quota_exceeded",
                                       "rate_limit_error"))]
        with self.assertRaises(pivota.RateLimitError) as cm:
            self.client.list_orders()
        self.assertEqual(cm.exception.retry_after, 3600)
        self.assertEqual(cm.exception.code, "daily_quota_exceeded")
        self.assertEqual(self.sleeps, [])

    def test_409_in_flight_is_retried_other_409_is_not(self):
        self.srv.script = [(409, {"Retry-After": "1"},
                            error_body(409, "idempotency_in_flight",
                                       "conflict")),
                           (409, {}, error_body(409, "out_of_stock",
                                                "conflict", "gone",
                                                "items[0].quantity"))]
        with self.assertRaises(pivota.ConflictError) as cm:
            self.client.create_order("m", [], "a@b.example", {})
        e = cm.exception
        self.assertEqual((e.status, e.code, e.param, e.detail),
                         (409, "out_of_stock", "items[0].quantity", "gone"))
        self.assertEqual(len(self.srv.seen), 2)

    def test_4xx_is_not_retried_and_typed(self):
        cases = [(400, pivota.InvalidRequestError, "invalid_request",
                  "invalid_request_error"),
                 (401, pivota.AuthenticationError, "invalid_api_key",
                  "authentication_error"),
                 (404, pivota.NotFoundError, "not_found", "not_found")]
        for status, cls, code, typ in cases:
            self.srv.seen.clear()
            self.srv.script = [(status, {}, error_body(status, code, typ,
                                                       "bad", "limit"))]
            with self.assertRaises(cls) as cm:
                self.client.get_order("ORD_X")
            e = cm.exception
            self.assertIsInstance(e, pivota.PivotaError)
            self.assertEqual((e.status, e.code, e.type, e.param, e.detail,
                              e.request_id),
                             (status, code, typ, "limit", "bad",
                              "req_test_%d" % status))
            self.assertEqual(len(self.srv.seen), 1)

    def test_402_carries_decline_code(self):
        body = error_body(402, "card_declined", "payment_error", "declined",
                          "payment_method.token")
        body["decline_code"] = "insufficient_funds"
        body["payment_id"] = "pay_1"
        self.srv.script = [(402, {}, body)]
        with self.assertRaises(pivota.PaymentDeclinedError) as cm:
            self.client.pay("ORD_A", "pm_card_chargeDeclined")
        self.assertEqual(cm.exception.decline_code, "insufficient_funds")
        self.assertEqual(cm.exception.payment_id, "pay_1")

    def test_5xx_exhausts_retries(self):
        self.srv.script = [(502, {}, error_body(502, "upstream_error",
                                                "upstream_error"))] * 4
        with self.assertRaises(pivota.APIError) as cm:
            self.client.get_analytics(days=7)
        self.assertEqual(cm.exception.status, 502)
        self.assertEqual(len(self.srv.seen), 4)
        self.assertEqual(self.srv.seen[0]["path"],
                         "/agent/v1/analytics/summary?days=7")

    def test_query_encoding(self):
        self.srv.script = [(200, {}, {"status": "success", "products": []})]
        self.client.search_products("red & blue", in_stock_only=True,
                                    min_price="10.50", limit=5)
        self.assertEqual(self.srv.seen[0]["path"],
                         "/agent/v1/products/search?query=red+%26+blue"
                         "&min_price=10.50&in_stock_only=true&limit=5")
        with self.assertRaises(TypeError):
            self.client.search_products("x", min_price=10.5)

    def test_bearer(self):
        c = pivota.Pivota(api_key="ak_live_k", bearer=True,
                          base_url=self.client.base_url)
        self.srv.script = [(200, {}, {"status": "success"})]
        c.get_rate_limits()
        h = self.srv.seen[0]["headers"]
        self.assertEqual(h["Authorization"], "Bearer ak_live_k")
        self.assertNotIn("X-API-Key", h)

    def test_connection_refused_is_retried_then_raised(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        c = pivota.Pivota(api_key="k", base_url="http://127.0.0.1:%d" % port,
                          sleep=self.sleeps.append, max_retries=2)
        with self.assertRaises(pivota.APIConnectionError) as cm:
            c.list_merchants()
        self.assertIsNone(cm.exception.status)
        self.assertEqual(len(self.sleeps), 2)


class WebhookTest(unittest.TestCase):
    SECRET = "whsec_" + "ab" * 32
    BODY = b'{"id":"evt_1","type":"order.paid","data":{"order_id":"ORD_A"}}'

    def test_round_trip(self):
        h = webhooks.sign_header(self.BODY, self.SECRET, 1700000000)
        self.assertEqual(pivota.verify_signature(self.BODY, h, self.SECRET,
                                                 now=1700000100), 1700000000)
        ev = pivota.construct_event(self.BODY, h, self.SECRET,
                                    now=1700000000)
        self.assertEqual(ev["type"], "order.paid")

    def test_known_vector(self):
        # HMAC-SHA256(key=secret, "1700000000." + body), computed apart.
        import hashlib
        import hmac
        want = hmac.new(self.SECRET.encode(), b"1700000000." + self.BODY,
                        hashlib.sha256).hexdigest()
        self.assertEqual(pivota.compute_signature(self.BODY, self.SECRET,
                                                  1700000000), want)

    def test_rejects(self):
        good = webhooks.sign_header(self.BODY, self.SECRET, 1700000000)
        sig = good.split("v1=")[1]
        bad = [
            (self.BODY + b" ", good, 1700000000),           # tampered body
            (self.BODY, good, 1700000301),                  # too late
            (self.BODY, good, 1699999699),                  # too early
            (self.BODY, "t=1700000000,v1=" + "0" * 64, 1700000000),
            (self.BODY, "v1=" + sig, 1700000000),           # no t
            (self.BODY, "t=1700000000", 1700000000),        # no v1
            (self.BODY, "t=abc,v1=" + sig, 1700000000),
            (self.BODY, "", 1700000000),
            (self.BODY, None, 1700000000),
        ]
        for body, header, now in bad:
            with self.assertRaises(pivota.WebhookSignatureError, msg=header):
                pivota.verify_signature(body, header, self.SECRET, now=now)
        with self.assertRaises(pivota.WebhookSignatureError):
            pivota.verify_signature(self.BODY, good, "whsec_other",
                                    now=1700000000)

    def test_client_verify_webhook(self):
        h = webhooks.sign_header(self.BODY, self.SECRET)
        self.assertEqual(pivota.Pivota.verify_webhook(self.BODY, h,
                                                      self.SECRET)["id"],
                         "evt_1")

    def test_any_v1_may_match(self):
        good = webhooks.sign_header(self.BODY, self.SECRET, 1700000000)
        sig = good.split("v1=")[1]
        h = "t=1700000000,v1=%s,v1=%s" % ("1" * 64, sig)
        pivota.verify_signature(self.BODY, h, self.SECRET, now=1700000000)


if __name__ == "__main__":
    unittest.main()
