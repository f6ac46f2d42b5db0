#!/usr/bin/env python3
"""A loopback fake of Adyen Checkout v71, for Pivota's tests.

Standard library only (Debian's python3).  It listens on 127.0.0.1 and
speaks the subset of external-apis.md 3 that Pivota uses:

  POST /v71/paymentMethods              {"paymentMethods": [...]} (a cheap
                                        authenticated call: verify())
  POST /v71/payments                    outcome by paymentMethod.holderName
                                        (3.6 table, Authorised by default);
                                        card 4212345678901237 (plain or
                                        "test_"-prefixed encryptedCardNumber)
                                        answers RedirectShopper
  POST /v71/payments/details            completes a redirect: Authorised
  POST /v71/payments/{psp}/captures     201 status "received", then CAPTURE
  POST /v71/payments/{psp}/refunds      201 status "received", then REFUND
  POST /v71/payments/{psp}/cancels      201 status "received", then
                                        CANCELLATION
  POST /v71/payments/{psp}/reversals    201 status "received", then
                                        CANCEL_OR_REFUND

Like Adyen it answers 401 ServiceError (000, security) without the
configured X-API-Key, 403 (901) for a merchantAccount the key does not
own, 422 14_030 when returnUrl is missing, 422 for other missing required
fields, and replays the first response for a repeated Idempotency-Key
(echoing the header).  pspReferences are deterministic 16-digit numbers.

A payment method may be a card (number or encryptedCardNumber, Adyen's
test platform takes "test_<number>" as an encrypted value) or a stored
one (storedPaymentMethodId, which then needs shopperReference).  Payments
auto-capture (config "auto_capture").  A refund above what is captured and
not yet refunded gets REFUND success "false"; holderName "refund failed" /
"capture failed" adds a later REFUND_FAILED / CAPTURE_FAILED.  Every
payment with a final outcome (and every PENDING one, settled as success)
sends an AUTHORISATION webhook.

Webhooks go to config "webhook_url" (loopback only) as
{"live":"false","notificationItems":[{"NotificationRequestItem":{...}}]}
with additionalData.hmacSignature per 3.7 (hex "hmac_key"), Basic auth when
basic_user is set, from one sender thread in order.  A delivery that is not
answered 2xx is sent again after webhook_retry_ms, up to webhook_attempts
times.

Control channel (JSON in, JSON out):

  GET  /__fake/health     {"ok": true, "port": P}
  POST /__fake/reset      everything back to the start-up state (queued
                          webhooks are dropped)
  POST /__fake/config     {"api_key", "merchant_account", "webhook_url",
                           "hmac_key", "basic_user", "basic_password",
                           "auto_capture", "webhook_retry_ms",
                           "webhook_attempts", "now"} (any subset)
  POST /__fake/faults     {"next": [500, 429, "hangup", "hangup_after",
                           {"status", "body", "delay_ms", "kind",
                            "retry_after"}]} for the next API requests in
                          order: a status answers a ServiceError (500 is
                          errorType "internal"), "hangup" closes without
                          answering, "hangup_after" does the work first.
                          {"clear": true} empties the queue.
  GET  /__fake/faults     what is still queued
  GET  /__fake/requests   every API request: method, path, headers (lower-
                          case names), body, status; ?since=N skips N
  GET  /__fake/payments   the payments, with their modifications
  GET  /__fake/webhooks   every webhook delivery and its attempts
  POST /__fake/webhook    {"item": {...} | "batch": [{...}, ...], "url",
                           "bad_hmac": true | index, "duplicate": true | N,
                           "hmac_key"}: signs and sends at once (missing
                          item fields get defaults) and answers the
                          deliveries

Usage: fake_adyen.py [--port P] [--port-file F] [--psp-base N]
       [--exit-with-parent] [--self-test] [--verbose]
The chosen port is printed on stdout (one line) once it is listening.
"""

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import os
import queue
import re
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_KEY = "AQEfake_api_key_0123456789"
MERCHANT = "PivotaTestMerchant"
# The 3.7 test-vector key, so signatures can be checked by hand.
HMAC_KEY = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
REDIRECT_CARD = "4212345678901237"
PSP_BASE = 8816000000000000

# external-apis.md 3.6: holderName -> (resultCode, refusalReason, code).
HOLDERS = {
    "APPROVED": ("Authorised", None, "1"),
    "DECLINED": ("Refused", "Refused", "2"),
    "REFERRAL": ("Refused", "Referral", "3"),
    "ERROR": ("Error", "Acquirer Error", "4"),
    "BLOCK_CARD": ("Refused", "Blocked Card", "5"),
    "CARD_EXPIRED": ("Refused", "Expired Card", "6"),
    "INVALID_AMOUNT": ("Refused", "Invalid Amount", "7"),
    "NOT_ENOUGH_BALANCE": ("Refused", "Not enough balance", "12"),
    "PENDING": ("Received", None, "13"),
    "UNKNOWN": ("Error", "Unknown", "0"),
}

PAYMENT_REQUIRED = ["amount", "merchantAccount", "paymentMethod", "reference",
                    "returnUrl"]
MOD_PATH = re.compile(r"/v71/payments/([0-9A-Z]{16})/"
                      r"(captures|refunds|cancels|reversals)")
MOD_EVENTS = {"captures": "CAPTURE", "refunds": "REFUND",
              "cancels": "CANCELLATION", "reversals": "CANCEL_OR_REFUND"}


def defaults():
    return {
        "api_key": API_KEY,
        "merchant_account": MERCHANT,
        "webhook_url": None,
        "hmac_key": HMAC_KEY,
        "basic_user": None,
        "basic_password": None,
        "auto_capture": True,
        "webhook_retry_ms": 50,
        "webhook_attempts": 5,
        "now": None,
    }


def service_error(status, code, message, etype, psp=None):
    body = {"status": status, "errorCode": code, "message": message,
            "errorType": etype}
    if psp:
        body["pspReference"] = psp
    return body


def signing_string(item):
    """external-apis.md 3.7: eight fields, missing ones empty."""
    amount = item.get("amount") or {}
    return ":".join(str(x) for x in [
        item.get("pspReference", ""), item.get("originalReference", ""),
        item.get("merchantAccountCode", ""),
        item.get("merchantReference", ""), amount.get("value", ""),
        amount.get("currency", ""), item.get("eventCode", ""),
        item.get("success", "")])


def sign(hexkey, text):
    key = binascii.unhexlify(hexkey)
    mac = hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def card_number(pm):
    n = pm.get("number") or pm.get("encryptedCardNumber") or ""
    return n[len("test_"):] if n.startswith("test_") else n


class Fake:
    """All state, behind one lock: the handler threads share it."""

    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.port = 0
        self.gen = 0
        self.outbox = queue.Queue()
        self.reset()

    def reset(self):
        self.cfg = defaults()
        self.faults = []
        self.requests = []
        self.payments = {}
        self.order = []
        self.idem = {}
        self.deliveries = []
        self.psp_seq = 0
        # Webhooks queued before the reset belong to another test.
        self.gen += 1

    def now_iso(self):
        if self.cfg["now"]:
            return self.cfg["now"]
        return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())

    def next_psp(self):
        self.psp_seq += 1
        base = getattr(getattr(self, "args", None), "psp_base", None)
        return "%016d" % ((base if base is not None else PSP_BASE) +
                          self.psp_seq)

    def item(self, psp, code, success, reference, amount, original=None,
             reason=None, operations=None):
        it = {"additionalData": {}, "amount": dict(amount),
              "eventCode": code, "eventDate": self.now_iso(),
              "merchantAccountCode": self.cfg["merchant_account"],
              "merchantReference": reference, "paymentMethod": "visa",
              "pspReference": psp, "success": "true" if success else "false"}
        if original:
            it["originalReference"] = original
        if reason:
            it["reason"] = reason
        if operations:
            it["operations"] = operations
        return it

    def emit(self, items):
        """Queues one notification (signed at send time)."""
        self.outbox.put((self.gen, [dict(i) for i in items]))

    # One handler per API path: (status, body).
    def payment_methods(self, req):
        return 200, {"paymentMethods": [
            {"brands": ["visa", "mc", "amex"], "name": "Cards",
             "type": "scheme"}]}

    def pay(self, req):
        missing = [k for k in PAYMENT_REQUIRED if k not in req]
        if "returnUrl" in missing:
            return 422, service_error(422, "14_030", "Return URL is missing.",
                                      "validation", self.next_psp())
        if missing:
            # Adyen's exact code for these is unverified.
            return 422, service_error(
                422, "702", "Required field '%s' is not provided." %
                missing[0], "validation", self.next_psp())
        amount, pm = req["amount"], req["paymentMethod"]
        if not isinstance(amount, dict) or \
                not isinstance(amount.get("value"), int) or \
                amount["value"] < 0 or \
                not re.fullmatch(r"[A-Z]{3}", str(amount.get("currency"))):
            return 422, service_error(422, "100", "Amount is invalid.",
                                      "validation", self.next_psp())
        if not isinstance(pm, dict) or not pm.get("type"):
            return 422, service_error(422, "14_004",
                                      "Missing payment method details",
                                      "validation", self.next_psp())
        if pm.get("storedPaymentMethodId") and not req.get("shopperReference"):
            return 422, service_error(422, "14_0", "shopperReference is "
                                      "required for stored methods",
                                      "validation", self.next_psp())
        if not (pm.get("storedPaymentMethodId") or card_number(pm)):
            return 422, service_error(422, "101", "Invalid card number",
                                      "validation", self.next_psp())
        holder = pm.get("holderName") or ""
        result, reason, rcode = HOLDERS.get(holder.upper(),
                                            ("Authorised", None, "1"))
        psp = self.next_psp()
        p = {"pspReference": psp, "reference": req["reference"],
             "amount": dict(amount), "holderName": holder,
             "merchantAccount": req["merchantAccount"],
             "returnUrl": req["returnUrl"],
             "shopperEmail": req.get("shopperEmail"),
             "metadata": req.get("metadata") or {},
             "paymentMethodType": pm["type"],
             "stored": bool(pm.get("storedPaymentMethodId")),
             "resultCode": result, "captured": 0, "refunded": 0,
             "modifications": []}
        body = {"pspReference": psp, "resultCode": result,
                "merchantReference": req["reference"],
                "amount": dict(amount)}
        if card_number(pm) == REDIRECT_CARD:
            p["resultCode"] = body["resultCode"] = "RedirectShopper"
            body["action"] = {
                "paymentMethodType": "scheme", "type": "redirect",
                "method": "GET",
                "url": "http://127.0.0.1:%d/__fake/3ds?psp=%s" % (
                    self.port, psp)}
        elif reason:
            body["refusalReason"] = reason
            body["refusalReasonCode"] = rcode
        else:
            body["additionalData"] = {"authCode": "%06d" % (
                self.psp_seq * 7919 % 1000000),
                "refusalReasonRaw": "AUTHORISED"}
        self.payments[psp] = p
        self.order.append(psp)
        if "action" not in body:
            self.settle(p, reason)
        return 200, body

    def settle(self, p, reason):
        """The AUTHORISATION webhook of a payment that has an outcome."""
        ok = p["resultCode"] in ("Authorised", "Received")
        if ok:
            p["resultCode"] = "Authorised"
            if self.cfg["auto_capture"]:
                p["captured"] = p["amount"]["value"]
        self.emit([self.item(p["pspReference"], "AUTHORISATION", ok,
                             p["reference"], p["amount"],
                             reason=None if ok else reason,
                             operations=["CANCEL", "CAPTURE", "REFUND"]
                             if ok else None)])

    def details(self, req):
        d = req.get("details") if isinstance(req.get("details"), dict) \
            else {}
        psp = d.get("redirectResult") or d.get("threeDSResult") or ""
        p = self.payments.get(psp)
        if p is None or p["resultCode"] != "RedirectShopper":
            return 422, service_error(422, "14_018", "Invalid payload "
                                      "provided", "validation",
                                      self.next_psp())
        p["resultCode"] = "Authorised"
        self.settle(p, None)
        return 200, {"pspReference": psp, "resultCode": "Authorised",
                     "merchantReference": p["reference"],
                     "amount": dict(p["amount"])}

    def modify(self, psp, kind, req):
        p = self.payments.get(psp)
        if "merchantAccount" not in req:
            return 422, service_error(
                422, "702", "Required field 'merchantAccount' is not "
                "provided.", "validation", self.next_psp())
        if p is None:
            # Adyen's exact code for this is unverified.
            return 422, service_error(422, "167", "Original pspReference "
                                      "required for this operation",
                                      "validation", self.next_psp())
        amount = req.get("amount")
        if kind in ("captures", "refunds") and (
                not isinstance(amount, dict) or
                not isinstance(amount.get("value"), int) or
                amount.get("currency") != p["amount"]["currency"]):
            return 422, service_error(422, "137", "Invalid amount "
                                      "specified", "validation",
                                      self.next_psp())
        if amount is None:
            amount = dict(p["amount"])
        mod = self.next_psp()
        ref = req.get("reference") or p["reference"]
        body = {"merchantAccount": req["merchantAccount"],
                "paymentPspReference": psp, "pspReference": mod,
                "reference": ref, "status": "received"}
        if kind in ("captures", "refunds"):
            body["amount"] = dict(amount)
        if "merchantRefundReason" in req:
            body["merchantRefundReason"] = req["merchantRefundReason"]
        ok, reason, later = self.apply(p, kind, amount["value"])
        p["modifications"].append({"kind": kind, "pspReference": mod,
                                   "reference": ref, "amount": amount,
                                   "success": ok,
                                   "reason": req.get("merchantRefundReason")})
        items = [self.item(mod, MOD_EVENTS[kind], ok, ref, amount, psp,
                           reason)]
        if later:
            items.append(self.item(mod, later, True, ref, amount, psp,
                                   "Simulated acquirer rejection"))
        for it in items:
            self.emit([it])
        return 201, body

    def apply(self, p, kind, value):
        """(success, reason, later eventCode) of a modification."""
        if p["resultCode"] != "Authorised":
            return False, "Payment was not authorised", None
        holder = p["holderName"].lower()
        if kind == "captures":
            if p["captured"] + value > p["amount"]["value"]:
                return False, "Insufficient amount to capture", None
            p["captured"] += value
            return True, None, "CAPTURE_FAILED" \
                if holder == "capture failed" else None
        if kind == "refunds":
            if p["refunded"] + value > p["captured"]:
                return False, "Refund amount exceeds the captured amount", \
                    None
            p["refunded"] += value
            return True, None, "REFUND_FAILED" \
                if holder == "refund failed" else None
        if kind == "cancels":
            if p["captured"] > 0:
                return False, "Payment already captured", None
            p["resultCode"] = "Cancelled"
            return True, None, None
        p["refunded"] = p["captured"]
        p["resultCode"] = "Cancelled"
        return True, None, None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-adyen/1"
    fake = None  # set in main()

    def setup(self):
        super().setup()
        # Headers and body go out in two writes: without this, Nagle and
        # the client's delayed ACK add 40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):
        if self.fake.args.verbose:
            sys.stderr.write("fake_adyen: " + (fmt % args) + "\n")

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def reply(self, status, obj, headers=None, raw=None):
        data = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def hang_up(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def route(self, method):
        url = urllib.parse.urlsplit(self.path)
        raw = self.body()
        if url.path.startswith("/__fake/"):
            return self.control(method, url, raw)
        if method != "POST" or not url.path.startswith("/v71/"):
            return self.reply(404, service_error(404, "000", "Not Found",
                                                 "validation"))
        return self.serve_api(url.path, raw)

    def dispatch(self, path, req):
        """(status, body) of an API call; the lock is held."""
        fake = self.fake
        if path == "/v71/paymentMethods":
            return fake.payment_methods(req)
        if path == "/v71/payments":
            return fake.pay(req)
        if path == "/v71/payments/details":
            return fake.details(req)
        m = MOD_PATH.fullmatch(path)
        if m:
            return fake.modify(m.group(1), m.group(2), req)
        return 404, service_error(404, "000", "Not Found", "validation")

    def serve_api(self, path, raw):
        fake = self.fake
        hdrs_in = {k.lower(): v for k, v in self.headers.items()}
        rec = {"method": "POST", "path": path, "headers": hdrs_in,
               "body": raw.decode("utf-8", "replace"), "status": None}
        key = hdrs_in.get("idempotency-key")
        hdrs = {"Idempotency-Key": key} if key else {}
        with fake.lock:
            fake.requests.append(rec)
            if hdrs_in.get("x-api-key") != fake.cfg["api_key"]:
                rec["status"] = 401
                return self.reply(401, service_error(
                    401, "000", "HTTP Status Response - Unauthorized",
                    "security"), hdrs)
            fault = fake.faults.pop(0) if fake.faults else None
        if fault is not None:
            if fault.get("delay_ms"):
                time.sleep(fault["delay_ms"] / 1000.0)
            if fault.get("kind") == "hangup":
                rec["status"] = 0
                return self.hang_up()
            status = fault.get("status")
            if status:
                rec["status"] = status
                body = fault.get("body")
                if body is None:
                    body = service_error(
                        status, "000", "Internal error" if status >= 500 else
                        "Too many requests" if status == 429 else
                        "Injected fault",
                        "internal" if status >= 500 else "validation")
                if fault.get("retry_after") is not None:
                    hdrs["Retry-After"] = str(fault["retry_after"])
                return self.reply(status, body, hdrs)
        try:
            req = json.loads(raw)
            if not isinstance(req, dict):
                raise ValueError
        except ValueError:
            rec["status"] = 400
            return self.reply(400, service_error(
                400, "702", "Unexpected input: malformed JSON",
                "validation"), hdrs)
        with fake.lock:
            status, body, replay = self.idempotent(path, key, raw, req)
            rec["status"] = status
            if replay:
                rec["replayed"] = True
        if fault is not None and fault.get("kind") == "hangup_after":
            rec["status"] = 0
            return self.hang_up()
        return self.reply(status, None, hdrs, raw=body)

    def idempotent(self, path, key, raw, req):
        """Runs the call once per (path, Idempotency-Key); the lock is
        held.  Returns (status, body bytes, replayed)."""
        fake = self.fake
        digest = hashlib.sha256(raw).hexdigest()
        if key and (path, key) in fake.idem:
            h, status, body = fake.idem[(path, key)]
            if h != digest:
                # Adyen's exact answer to this is unverified.
                return 422, json.dumps(service_error(
                    422, "704", "Idempotency key reused with a different "
                    "request body", "validation")).encode(), False
            return status, body, True
        acct = req.get("merchantAccount")
        if acct is not None and acct != fake.cfg["merchant_account"]:
            status, obj = 403, service_error(403, "901", "Invalid Merchant "
                                             "Account", "security")
        else:
            status, obj = self.dispatch(path, req)
        body = json.dumps(obj).encode()
        if key and status < 500:
            fake.idem[(path, key)] = (digest, status, body)
        return status, body, False

    def control(self, method, url, raw):
        fake = self.fake
        what = url.path[len("/__fake/"):]
        try:
            arg = json.loads(raw) if raw else {}
        except ValueError:
            return self.reply(400, {"error": "body is not JSON"})
        with fake.lock:
            if what == "health":
                return self.reply(200, {"ok": True, "port": fake.port})
            if what == "reset" and method == "POST":
                fake.reset()
                return self.reply(200, {"ok": True})
            if what == "config" and method == "POST":
                unknown = [k for k in arg if k not in fake.cfg]
                if unknown:
                    return self.reply(400, {"error": "unknown keys",
                                            "keys": unknown})
                fake.cfg.update(arg)
                return self.reply(200, fake.cfg)
            if what == "faults":
                if method == "POST":
                    if arg.get("clear"):
                        fake.faults = []
                    try:
                        fake.faults.extend([normalize(f)
                                            for f in arg.get("next", [])])
                    except ValueError as e:
                        return self.reply(400, {"error": str(e)})
                return self.reply(200, {"pending": fake.faults})
            if what == "requests":
                q = urllib.parse.parse_qs(url.query)
                since = int(q.get("since", ["0"])[0])
                return self.reply(200, {"requests": fake.requests[since:]})
            if what == "payments":
                return self.reply(200, {"payments": [
                    fake.payments[p] for p in fake.order]})
            if what == "webhooks":
                return self.reply(200, {"deliveries": fake.deliveries,
                                        "queued": fake.outbox.qsize()})
            if what == "3ds":
                psp = urllib.parse.parse_qs(url.query).get("psp", [""])[0]
                return self.reply(200, {"redirectResult": psp})
            if what == "webhook" and method == "POST":
                spec = dict(arg)
                cfg = dict(fake.cfg)
                items = spec.get("batch") or [spec.get("item") or {}]
                items = [fill(fake, dict(i)) for i in items]
        if what == "webhook" and method == "POST":
            try:
                out = send_now(fake, cfg, spec, items)
            except ValueError as e:
                return self.reply(400, {"error": str(e)})
            return self.reply(200, out)
        return self.reply(404, {"error": "no such control path"})


def normalize(f):
    """A fault entry as an object with a "kind" or a "status"."""
    if isinstance(f, int):
        return {"status": f}
    if isinstance(f, str):
        if f not in ("hangup", "hangup_after"):
            raise ValueError("unknown fault %r" % f)
        return {"kind": f}
    f = dict(f)
    if "kind" not in f and "status" not in f and "delay_ms" not in f:
        raise ValueError("fault needs kind, status or delay_ms")
    return f


def fill(fake, it):
    """Defaults for an on-demand item; the lock is held."""
    it.setdefault("pspReference", fake.next_psp())
    it.setdefault("merchantAccountCode", fake.cfg["merchant_account"])
    it.setdefault("merchantReference", "order-1001")
    it.setdefault("eventCode", "AUTHORISATION")
    it.setdefault("eventDate", fake.now_iso())
    it.setdefault("amount", {"currency": "EUR", "value": 2000})
    it.setdefault("success", "true")
    it.setdefault("additionalData", {})
    return it


def loopback(url):
    host = urllib.parse.urlsplit(url or "").hostname
    if not (url or "").startswith(("http://", "https://")) or \
            host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("webhooks go to loopback URLs only")


def notification(cfg, items, bad=None, hexkey=None):
    """The signed body.  bad: True signs every item wrongly, an int only
    that item."""
    key = hexkey or cfg["hmac_key"]
    wrong = "00" * 32
    wrapped = []
    for n, it in enumerate(items):
        it = json.loads(json.dumps(it))
        it.setdefault("additionalData", {})
        forged = bad is True or (type(bad) is int and bad == n)
        it["additionalData"]["hmacSignature"] = sign(
            wrong if forged else key, signing_string(it))
        wrapped.append({"NotificationRequestItem": it})
    return json.dumps({"live": "false", "notificationItems": wrapped},
                      separators=(",", ":")).encode()


def post(cfg, url, raw):
    """One delivery attempt: {"status", "body"} (status 0: no answer)."""
    headers = {"Content-Type": "application/json"}
    if cfg.get("basic_user"):
        cred = "%s:%s" % (cfg["basic_user"], cfg.get("basic_password") or "")
        headers["Authorization"] = "Basic " + base64.b64encode(
            cred.encode()).decode()
    req = urllib.request.Request(url, data=raw, headers=headers,
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return {"status": r.status,
                    "body": r.read().decode("utf-8", "replace")}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": e.read().decode("utf-8", "replace")}
    except (urllib.error.URLError, OSError) as e:
        return {"status": 0, "error": str(e)}


def send_now(fake, cfg, spec, items):
    url = spec.get("url") or cfg["webhook_url"]
    loopback(url)
    raw = notification(cfg, items, spec.get("bad_hmac"), spec.get("hmac_key"))
    times = spec.get("duplicate") or 0
    times = 1 + (1 if times is True else int(times))
    out = {"body": raw.decode(), "deliveries": [post(cfg, url, raw)
                                               for _ in range(times)]}
    with fake.lock:
        fake.deliveries.append({"on_demand": True,
                                "events": [i["eventCode"] for i in items],
                                "attempts": out["deliveries"]})
    return out


def sender(fake):
    """Delivers queued notifications in order, re-sending each until it
    is acknowledged with a 2xx or its attempts run out."""
    while True:
        gen, items = fake.outbox.get()
        with fake.lock:
            cfg = dict(fake.cfg)
            if gen != fake.gen:
                continue
            rec = {"on_demand": False,
                   "events": [i["eventCode"] for i in items],
                   "attempts": []}
            fake.deliveries.append(rec)
        if not cfg["webhook_url"]:
            continue
        raw = notification(cfg, items)
        rec["body"] = raw.decode()
        for _ in range(max(1, int(cfg["webhook_attempts"]))):
            try:
                loopback(cfg["webhook_url"])
                res = post(cfg, cfg["webhook_url"], raw)
            except ValueError as e:
                res = {"status": 0, "error": str(e)}
            with fake.lock:
                if gen != fake.gen:
                    break
                rec["attempts"].append(res)
            if 200 <= res["status"] <= 299:
                break
            time.sleep(cfg["webhook_retry_ms"] / 1000.0)


def self_test():
    """The signer against the vectors of external-apis.md 3.7."""
    k1 = "DFB1EB5485895CFA84146406857104ABB4CBCABDC8AAF103A624C8F6A3EAAB00"
    assert sign(k1, "pspReference:originalReference:merchantAccount:"
                "reference:1000:EUR:REPORT_AVAILABLE:true") == \
        "ZNBPtI+oDyyRrLyD1XirkKnQgIAlFc07Vj27TeHsDRE="
    auth = {"pspReference": "7914073381342284",
            "merchantAccountCode": "TestMerchant",
            "merchantReference": "order-1001",
            "amount": {"currency": "EUR", "value": 2000},
            "eventCode": "AUTHORISATION", "success": "true"}
    assert signing_string(auth) == \
        "7914073381342284::TestMerchant:order-1001:2000:EUR:AUTHORISATION:true"
    assert sign(HMAC_KEY, signing_string(auth)) == \
        "wL/JhgfVpdfitztv4U3ldnq/2IDMO1bUm3EFukVJlYc="
    refund = dict(auth, pspReference="8816118280275544",
                  originalReference="7914073381342284",
                  merchantReference="refund-1001-1", eventCode="REFUND",
                  amount={"currency": "EUR", "value": 500})
    assert sign(HMAC_KEY, signing_string(refund)) == \
        "RXRlmGtkpr0XrNsN3JmNBkApDoVbWeqR1Pb+LyhO9lc="
    failed = dict(auth, pspReference="8816118280275599",
                  merchantReference="order-1002", success="false")
    assert sign(HMAC_KEY, signing_string(failed)) == \
        "yFYDpRx0d+msbY8OHGMY56wBLMj6nvRw4At99m9CB8M="
    print("fake_adyen: self-test ok")


def watch_parent(ppid):
    """Exits when the test that started us is gone."""
    while True:
        time.sleep(0.2)
        if os.getppid() != ppid:
            os._exit(0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--psp-base", type=int, default=None,
                    help="pspReferences count up from this 16-digit number, "
                    "so several fakes over one database never reuse one")
    ap.add_argument("--exit-with-parent", action="store_true")
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    Handler.fake = Fake(args)
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 64
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    Handler.fake.port = srv.server_address[1]
    threading.Thread(target=sender, args=(Handler.fake,), daemon=True).start()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % Handler.fake.port)
        os.rename(tmp, args.port_file)
    print(Handler.fake.port, flush=True)
    if args.exit_with_parent:
        threading.Thread(target=watch_parent, args=(os.getppid(),),
                         daemon=True).start()
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
