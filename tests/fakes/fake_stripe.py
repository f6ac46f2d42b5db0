#!/usr/bin/env python3
"""A loopback fake of Stripe's v1 API, for Pivota's tests.

Standard library only (Debian's python3).  It listens on 127.0.0.1 and
keeps state like Stripe's test mode does (external-apis.md 1 and 4):

  POST /v1/payment_intents              create, and confirm if confirm=true
  GET  /v1/payment_intents/{id}         retrieve (expand[]=latest_charge)
  POST /v1/payment_intents/{id}         update
  POST /v1/payment_intents/{id}/confirm
  POST /v1/payment_intents/{id}/capture amount_to_capture
  POST /v1/payment_intents/{id}/cancel  cancellation_reason
  POST /v1/refunds                      payment_intent or charge, amount
  GET  /v1/refunds/{id}
  GET  /v1/balance, GET /v1/account     cheap authenticated reads

Bodies are application/x-www-form-urlencoded with Stripe's brackets
(metadata[k]=v, expand[]=x, expand[0]=x, items[0][price]=p); answers are
JSON.  Every /v1 request needs "Authorization: Bearer <secret_key>" (or
Basic with the key as user name) where the key is the configured one and
starts with sk_test_; anything else is 401.

Test payment methods (external-apis.md 1.5):

  pm_card_visa, pm_card_mastercard, pm_card_amex, tok_visa
        succeeded (requires_capture with capture_method=manual)
  pm_card_visa_chargeDeclined, pm_card_chargeDeclined
        402 card_error card_declined / generic_decline
  pm_card_visa_chargeDeclinedInsufficientFunds   insufficient_funds
  pm_card_visa_chargeDeclinedLostCard            lost_card
  pm_card_visa_chargeDeclinedStolenCard          stolen_card
  pm_card_chargeDeclinedExpiredCard              code expired_card
  pm_card_chargeDeclinedIncorrectCvc             code incorrect_cvc
  pm_card_chargeDeclinedProcessingError          code processing_error
  pm_card_authenticationRequired, pm_card_threeDSecure2Required,
  pm_card_authenticationRequiredOnSetup (on session)
        requires_action, next_action redirect_to_url
  pm_fake_processing (not a Stripe token)        processing
  anything else                                  400 resource_missing

A decline answers 402 with the PaymentIntent, now
requires_payment_method with last_payment_error, in error.payment_intent.
Idempotency-Key on a POST: the same key and the same parameters replay
the first answer byte for byte (402s included) with
"Idempotent-Replayed: true"; the same key with other parameters or
another path is 400 idempotency_error; a second request while the first
is still running is 409.  Answers that failed validation (400) are not
stored, as at Stripe.  Ids count: pi_fake_000001, ch_fake_000001,
re_fake_000001, evt_fake_000001, req_fake_000001.

Webhooks: every state change makes an event (payment_intent.succeeded,
.payment_failed, .requires_action, .amount_capturable_updated,
.processing, .canceled, charge.succeeded, charge.captured, charge.refunded,
refund.created, refund.updated, charge.refund.updated, refund.failed)
that is POSTed, signed per external-apis.md 1.9, to webhook_url by a
background thread in order, unless hold_webhooks is set: then they wait
for POST /__fake/release.

Control channel (JSON in, JSON out):

  GET  /__fake/health     {"ok": true, "port": P}
  POST /__fake/reset      everything back to the start-up state
  POST /__fake/config     {"secret_key", "webhook_url", "webhook_secret",
                           "now", "hold_webhooks", "api_version"} (any
                          subset; "now" is unix seconds or null)
  POST /__fake/faults     {"next": [500, 429, "hangup", "hangup_after",
                          {"status", "delay_ms", "body", "should_retry",
                          "path"}], "clear": true}: applied to the next
                          /v1 requests (matching "path" if given) in
                          order.  5xx carry Stripe-Should-Retry: true
                          unless "should_retry" says otherwise; "hangup"
                          closes without answering; "hangup_after" does
                          the work, then closes; a bare delay_ms waits,
                          then serves the request normally.
  GET  /__fake/faults     what is still queued
  GET  /__fake/requests   every /v1 request: method, path, headers (lower-
                          case names), body (raw), form (parsed), status,
                          replayed; ?since=N skips the first N
  GET  /__fake/intents    the PaymentIntents; GET /__fake/refunds likewise
  GET  /__fake/events     every event made, with its deliveries
  POST /__fake/complete_action {"id": pi}: the customer finished 3DS (or an
                          async payment settled): succeeded or
                          requires_capture, and its webhook.  GET
                          /__fake/3ds/{pi} does the same.
  POST /__fake/refund_status {"id": re, "status": "failed",
                          "failure_reason": ...}: a refund changes later, as
                          with card 4000000000005126; emits refund.updated,
                          charge.refund.updated (and refund.failed).
  POST /__fake/webhook    {"type", "object" (a dict, or an id of the
                          fake's state), "url", "secret", "bad_signature",
                          "stale", "duplicate", "delay", "body"}: makes one
                          event and delivers it now (to url, else
                          webhook_url, else nowhere); answers with the raw
                          body, the Stripe-Signature and the deliveries.
  POST /__fake/release    {"order": "sent"|"reverse"}: delivers the held
                          events now and answers with the deliveries.

Usage: fake_stripe.py [--port P] [--port-file F] [--key K] [--secret S]
       [--id-tag T] [--exit-with-parent] [--self-test] [--verbose]
The chosen port is printed on stdout (one line) once it is listening.
"""

import argparse
import base64
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

API_VERSION = "2026-07-29.dahlia"
DOCS = "https://stripe.com/docs/error-codes/"
SUCCEED = ("pm_card_visa", "pm_card_mastercard", "pm_card_amex", "tok_visa")
ACTION = ("pm_card_authenticationRequired", "pm_card_threeDSecure2Required",
          "pm_card_authenticationRequiredOnSetup")
PROCESSING = ("pm_fake_processing",)
DECLINE = {
    # token: (code, decline_code, message)
    "pm_card_visa_chargeDeclined": ("card_declined", "generic_decline",
                                    "Your card was declined."),
    "pm_card_chargeDeclined": ("card_declined", "generic_decline",
                               "Your card was declined."),
    "pm_card_visa_chargeDeclinedInsufficientFunds": (
        "card_declined", "insufficient_funds",
        "Your card has insufficient funds."),
    "pm_card_visa_chargeDeclinedLostCard": ("card_declined", "lost_card",
                                            "Your card was declined."),
    "pm_card_visa_chargeDeclinedStolenCard": ("card_declined", "stolen_card",
                                              "Your card was declined."),
    "pm_card_chargeDeclinedExpiredCard": ("expired_card", None,
                                          "Your card has expired."),
    "pm_card_chargeDeclinedIncorrectCvc": (
        "incorrect_cvc", None, "Your card's security code is incorrect."),
    "pm_card_chargeDeclinedProcessingError": (
        "processing_error", None,
        "An error occurred while processing your card. Try again in a "
        "little bit."),
}
CANCELABLE = ("requires_payment_method", "requires_capture",
              "requires_confirmation", "requires_action", "processing")
CONFIRMABLE = ("requires_payment_method", "requires_confirmation",
               "requires_action")
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
CANCEL_REASONS = ("duplicate", "fraudulent", "requested_by_customer",
                  "abandoned")

# external-apis.md 1.9: the signer must reproduce this.
VECTOR_SECRET = "whsec_test_secret_0123456789abcdef"
VECTOR_T = 1700000000
VECTOR_V1 = "3588b73292e8e10094ee9c7e2e2e1ef02ae635ca3868f8b5de696853c3ec34aa"
VECTOR_ROTATED = "whsec_rotated_secret_fedcba9876543210"
VECTOR_ROTATED_V1 = \
    "bbaca1253a4fde875c99342b3d013ab37d74a1b35d5e26869e76bedc8598305b"


class StripeError(Exception):
    """An error answer: status and the body's error object."""

    def __init__(self, status, type_, message, code=None, param=None,
                 store=True, **extra):
        super().__init__(message)
        self.status = status
        self.store = store  # may an Idempotency-Key keep this answer?
        err = {"type": type_, "message": message}
        if code:
            err["code"] = code
            err["doc_url"] = DOCS + code.replace("_", "-")
        if param:
            err["param"] = param
        err.update(extra)
        self.body = {"error": err}


def invalid(message, param=None, code=None, store=False):
    return StripeError(400, "invalid_request_error", message, code, param,
                       store=store)


def missing(kind, ident, param="id"):
    return StripeError(404, "invalid_request_error",
                       "No such %s: '%s'" % (kind, ident),
                       "resource_missing", param, store=True)


def parse_form(raw):
    """Stripe's bracket form: a[b][c]=v, a[]=v and a[0]=v.  Returns a dict;
    a container whose keys are all indexes becomes a list."""
    root = {}
    for key, value in urllib.parse.parse_qsl(raw, keep_blank_values=True,
                                             strict_parsing=False):
        m = re.fullmatch(r"([^\[\]]+)((?:\[[^\[\]]*\])*)", key)
        if m is None:
            raise invalid("Invalid parameter name: %s" % key)
        parts = [m.group(1)] + re.findall(r"\[([^\[\]]*)\]", m.group(2))
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":
                part = "%d" % sum(1 for k in node if k.isdigit())
            if last:
                node[part] = value
            else:
                nxt = node.setdefault(part, {})
                if not isinstance(nxt, dict):
                    raise invalid("Invalid hash: %s" % key, key)
                node = nxt
    return listify(root)


def listify(node):
    if not isinstance(node, dict):
        return node
    out = {k: listify(v) for k, v in node.items()}
    if out and all(k.isdigit() for k in out):
        return [out[k] for k in sorted(out, key=int)]
    return out


def as_list(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def as_int(form, name, required=False, minimum=0):
    v = form.get(name)
    if v is None or v == "":
        if required:
            raise invalid("Missing required param: %s." % name, name,
                          "parameter_missing")
        return None
    if not isinstance(v, str) or not re.fullmatch(r"-?\d{1,12}", v):
        raise invalid("Invalid integer: %s" % v, name,
                      "parameter_invalid_integer")
    n = int(v)
    if n < minimum:
        raise invalid("This value must be greater than or equal to %d."
                      % minimum, name, "parameter_invalid_integer")
    return n


def as_bool(form, name, default=False):
    v = form.get(name)
    if v is None or v == "":
        return default
    if v not in ("true", "false"):
        raise invalid("Invalid boolean: %s" % v, name)
    return v == "true"


def sign(secret, t, raw):
    msg = str(t).encode() + b"." + raw
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def defaults(args):
    return {
        "secret_key": args.key,
        "webhook_url": None,
        "webhook_secret": args.secret,
        "now": None,
        "hold_webhooks": False,
        "api_version": API_VERSION,
    }


class Fake:
    """All state, behind one lock: the handler threads share it."""

    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.port = 0
        self.outbox = queue.Queue()
        threading.Thread(target=self.deliver_loop, daemon=True).start()
        self.reset()

    def reset(self):
        self.cfg = defaults(self.args)
        self.faults = []
        self.requests = []
        self.intents = {}
        self.charges = {}
        self.refunds = {}
        self.events = []
        self.held = []
        self.idem = {}
        self.inflight = set()
        self.seq = {}
        # Deliveries already queued belong to the old state: drop them.
        self.epoch = getattr(self, "epoch", 0) + 1

    def now(self):
        n = self.cfg["now"]
        return int(n) if n is not None else int(time.time())

    def next_id(self, prefix):
        self.seq[prefix] = self.seq.get(prefix, 0) + 1
        return "%s_fake_%s%06d" % (prefix, getattr(self.args, "id_tag", ""),
                                   self.seq[prefix])

    # --- objects -------------------------------------------------------

    def new_intent(self, form):
        amount = as_int(form, "amount", required=True, minimum=1)
        currency = form.get("currency")
        if not currency:
            raise invalid("Missing required param: currency.", "currency",
                          "parameter_missing")
        if not re.fullmatch(r"[a-z]{3}", currency):
            raise invalid("Invalid currency: %s. Stripe currently supports "
                          "these currencies: usd, eur, ..." % currency,
                          "currency", "parameter_invalid_string")
        capture = form.get("capture_method") or "automatic"
        if capture not in ("automatic", "automatic_async", "manual"):
            raise invalid("Invalid capture_method: %s" % capture,
                          "capture_method")
        apm = form.get("automatic_payment_methods") or {}
        if not isinstance(apm, dict):
            raise invalid("Invalid hash", "automatic_payment_methods")
        types = as_list(form.get("payment_method_types"))
        apm_on = apm.get("enabled") == "true" or not types
        redirects = apm.get("allow_redirects") or "always"
        if redirects not in ("always", "never"):
            raise invalid("Invalid allow_redirects", "automatic_payment_"
                          "methods[allow_redirects]")
        metadata = form.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise invalid("Invalid hash", "metadata")
        pid = self.next_id("pi")
        return {
            "id": pid,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "automatic_payment_methods": {
                "allow_redirects": redirects, "enabled": True}
            if apm_on else None,
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": capture,
            "client_secret": "%s_secret_fake%06d" % (pid, self.seq["pi"]),
            "confirmation_method": "automatic",
            "created": self.now(),
            "currency": currency,
            "customer": form.get("customer") or None,
            "description": form.get("description") or None,
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": {k: v for k, v in metadata.items() if v != ""},
            "next_action": None,
            "payment_method": None,
            "payment_method_types": types or ["card"],
            "receipt_email": form.get("receipt_email") or None,
            "return_url": None,
            "status": "requires_payment_method",
        }

    def new_charge(self, pi, pm, paid):
        cid = self.next_id("ch")
        ch = {"id": cid, "object": "charge", "amount": pi["amount"],
              "amount_captured": pi["amount"] if paid and
              pi["capture_method"] != "manual" else 0,
              "amount_refunded": 0, "captured": False,
              "currency": pi["currency"], "created": self.now(),
              "paid": paid, "payment_intent": pi["id"],
              "payment_method": pm, "refunded": False,
              "status": "succeeded" if paid else "failed",
              "metadata": dict(pi["metadata"]), "livemode": False}
        ch["captured"] = ch["amount_captured"] > 0
        self.charges[cid] = ch
        pi["latest_charge"] = cid
        return ch

    def render_intent(self, pi, expand=()):
        out = dict(pi)
        out.pop("return_url", None)
        if "latest_charge" in expand and pi["latest_charge"]:
            out["latest_charge"] = dict(self.charges[pi["latest_charge"]])
        return out

    # --- the status machine ---------------------------------------------

    def confirm(self, pi, form, events):
        if pi["status"] not in CONFIRMABLE:
            raise invalid("This PaymentIntent's status is %s, which does "
                          "not allow confirmation." % pi["status"],
                          code="payment_intent_unexpected_state",
                          store=True, payment_intent=self.render_intent(pi))
        pm = form.get("payment_method") or pi["payment_method"]
        if not pm:
            raise invalid("You cannot confirm this PaymentIntent because "
                          "it's missing a payment method.",
                          "payment_method",
                          "payment_intent_unexpected_state")
        known = pm in SUCCEED or pm in ACTION or pm in DECLINE or \
            pm in PROCESSING
        if not known:
            raise invalid("No such PaymentMethod: '%s'" % pm,
                          "payment_method", "resource_missing")
        return_url = form.get("return_url") or pi["return_url"]
        apm = pi["automatic_payment_methods"]
        if apm and apm["allow_redirects"] != "never" and not return_url:
            raise invalid(
                "This PaymentIntent is configured to accept payment methods "
                "enabled in your Dashboard, some of which may require a full "
                "page redirect to succeed. If you do not want to accept "
                "redirect-based payment methods, set "
                "`automatic_payment_methods[allow_redirects]` to `never`. "
                "If you do want to accept redirect-based payment methods, "
                "set `return_url` when confirming the PaymentIntent.",
                "return_url")
        pi["payment_method"] = pm
        pi["return_url"] = return_url
        pi["last_payment_error"] = None
        pi["next_action"] = None
        off_session = as_bool(form, "off_session")
        if pm in DECLINE:
            code, decline, message = DECLINE[pm]
            ch = self.new_charge(pi, pm, False)
            err = {"type": "card_error", "code": code,
                   "message": message, "charge": ch["id"],
                   "doc_url": DOCS + code.replace("_", "-"),
                   "payment_method": {"id": pm, "object": "payment_method",
                                      "type": "card"}}
            if decline:
                err["decline_code"] = decline
            ch["failure_code"] = code
            ch["failure_message"] = message
            pi["status"] = "requires_payment_method"
            pi["last_payment_error"] = err
            pi["payment_method"] = None
            events.append(("payment_intent.payment_failed", self.snap(pi)))
            extra = {k: v for k, v in err.items()
                     if k not in ("type", "code", "message", "doc_url")}
            extra["payment_intent"] = self.render_intent(pi)
            raise StripeError(402, "card_error", message, code, None,
                              **extra)
        on_setup = pm == "pm_card_authenticationRequiredOnSetup"
        if pm in ACTION and not (off_session and on_setup):
            pi["status"] = "requires_action"
            pi["next_action"] = {
                "type": "redirect_to_url",
                "redirect_to_url": {
                    "url": "http://127.0.0.1:%d/__fake/3ds/%s" %
                    (self.port, pi["id"]),
                    "return_url": return_url}}
            events.append(("payment_intent.requires_action", self.snap(pi)))
            return
        if pm in PROCESSING:
            pi["status"] = "processing"
            events.append(("payment_intent.processing", self.snap(pi)))
            return
        self.settle(pi, events)

    def settle(self, pi, events):
        """The payment went through: captured, or held for capture."""
        pi["next_action"] = None
        ch = self.new_charge(pi, pi["payment_method"], True)
        if pi["capture_method"] == "manual":
            pi["status"] = "requires_capture"
            pi["amount_capturable"] = pi["amount"]
            events.append(("payment_intent.amount_capturable_updated",
                           self.snap(pi)))
        else:
            pi["status"] = "succeeded"
            pi["amount_received"] = pi["amount"]
            events.append(("charge.succeeded", self.snap(ch)))
            events.append(("payment_intent.succeeded", self.snap(pi)))

    def snap(self, obj):
        """The object as an event shows it: as it is now, not later."""
        if obj.get("object") == "payment_intent":
            obj = self.render_intent(obj)
        return json.loads(json.dumps(obj))

    def intent(self, pid):
        pi = self.intents.get(pid)
        if pi is None:
            raise missing("payment_intent", pid, "intent")
        return pi

    def op_create(self, form, events):
        if form.get("return_url") and not as_bool(form, "confirm"):
            raise invalid("You can only pass `return_url` when `confirm` "
                          "is true.", "return_url")
        pi = self.new_intent(form)
        if form.get("payment_method"):
            pi["payment_method"] = form["payment_method"]
            pi["status"] = "requires_confirmation"
        created = self.snap(pi)
        if as_bool(form, "confirm"):
            pm = pi["payment_method"]
            pi["payment_method"] = None
            pi["status"] = "requires_payment_method"
            # A bad request creates nothing, so confirm before storing,
            # but a decline stores the PaymentIntent it declines.
            try:
                self.confirm(pi, dict(form, payment_method=pm or ""), events)
            except StripeError as e:
                if e.status == 402:
                    self.intents[pi["id"]] = pi
                    events.insert(0, ("payment_intent.created", created))
                else:
                    self.seq["pi"] -= 1
                raise
        self.intents[pi["id"]] = pi
        events.insert(0, ("payment_intent.created", created))
        return pi

    def op_update(self, pi, form, events):
        if pi["status"] in ("succeeded", "canceled", "processing"):
            raise invalid("This PaymentIntent's status is %s and cannot be "
                          "updated." % pi["status"],
                          code="payment_intent_unexpected_state", store=True)
        if "amount" in form:
            pi["amount"] = as_int(form, "amount", True, 1)
        for k in ("description", "receipt_email", "customer"):
            if k in form:
                pi[k] = form[k] or None
        if isinstance(form.get("metadata"), dict):
            for k, v in form["metadata"].items():
                if v == "":
                    pi["metadata"].pop(k, None)
                else:
                    pi["metadata"][k] = v
        if form.get("payment_method"):
            pi["payment_method"] = form["payment_method"]
            pi["status"] = "requires_confirmation"
        return pi

    def op_capture(self, pi, form, events):
        if pi["status"] != "requires_capture":
            raise invalid("This PaymentIntent could not be captured because "
                          "it has a status of %s. Only a PaymentIntent with "
                          "one of the following statuses may be captured: "
                          "requires_capture." % pi["status"],
                          code="payment_intent_unexpected_state", store=True)
        amount = as_int(form, "amount_to_capture", minimum=1)
        if amount is None:
            amount = pi["amount_capturable"]
        if amount > pi["amount_capturable"]:
            raise invalid("The amount to capture is larger than the "
                          "amount capturable.", "amount_to_capture",
                          "amount_too_large", store=True)
        pi["amount_received"] = amount
        pi["amount_capturable"] = 0
        pi["status"] = "succeeded"
        ch = self.charges[pi["latest_charge"]]
        ch["amount_captured"] = amount
        ch["captured"] = True
        events.append(("charge.captured", self.snap(ch)))
        events.append(("payment_intent.succeeded", self.snap(pi)))
        return pi

    def op_cancel(self, pi, form, events):
        if pi["status"] not in CANCELABLE:
            raise invalid("You cannot cancel this PaymentIntent because it "
                          "has a status of %s." % pi["status"],
                          code="payment_intent_unexpected_state", store=True)
        reason = form.get("cancellation_reason") or None
        if reason is not None and reason not in CANCEL_REASONS:
            raise invalid("Invalid cancellation_reason: %s" % reason,
                          "cancellation_reason")
        pi["status"] = "canceled"
        pi["canceled_at"] = self.now()
        pi["cancellation_reason"] = reason
        pi["amount_capturable"] = 0
        pi["next_action"] = None
        events.append(("payment_intent.canceled", self.snap(pi)))
        return pi

    def op_refund(self, form, events):
        if form.get("payment_intent"):
            pi = self.intent(form["payment_intent"])
            ch = self.charges.get(pi["latest_charge"] or "")
            if pi["status"] != "succeeded" or ch is None:
                raise invalid("This PaymentIntent does not have a successful "
                              "charge to refund.", "payment_intent",
                              store=True)
        elif form.get("charge"):
            ch = self.charges.get(form["charge"])
            if ch is None:
                raise missing("charge", form["charge"], "charge")
            pi = self.intents[ch["payment_intent"]]
            if not ch["captured"]:
                raise invalid("This charge has not been captured.", "charge")
        else:
            raise invalid("One of the following params should be provided "
                          "for this request: payment_intent or charge.")
        reason = form.get("reason") or None
        if reason is not None and reason not in REFUND_REASONS:
            raise invalid("Invalid reason: must be one of duplicate, "
                          "fraudulent, or requested_by_customer", "reason")
        left = ch["amount_captured"] - ch["amount_refunded"]
        if left <= 0:
            raise invalid("Charge %s has already been refunded." % ch["id"],
                          code="charge_already_refunded", store=True)
        amount = as_int(form, "amount", minimum=1)
        if amount is None:
            amount = left
        if amount > left:
            raise invalid("Refund amount ($%d.%02d) is greater than "
                          "unrefunded amount on charge ($%d.%02d)" %
                          (amount // 100, amount % 100, left // 100,
                           left % 100), "amount", "amount_too_large",
                          store=True)
        metadata = form.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise invalid("Invalid hash", "metadata")
        rid = self.next_id("re")
        re_ = {"id": rid, "object": "refund", "amount": amount,
               "balance_transaction": None, "charge": ch["id"],
               "created": self.now(), "currency": ch["currency"],
               "metadata": {k: v for k, v in metadata.items() if v != ""},
               "payment_intent": pi["id"], "reason": reason,
               "receipt_number": None, "status": "succeeded",
               "failure_reason": None}
        self.refunds[rid] = re_
        ch["amount_refunded"] += amount
        ch["refunded"] = ch["amount_refunded"] >= ch["amount_captured"]
        events.append(("refund.created", self.snap(re_)))
        events.append(("charge.refunded", self.snap(ch)))
        return re_

    def refund_status(self, rid, status, reason):
        """A refund changes later (card 4000000000005126 turns failed):
        the charge gets the money back and refund.updated goes out."""
        re_ = self.refunds.get(rid or "")
        if re_ is None:
            raise missing("refund", rid)
        if status not in ("succeeded", "pending", "requires_action",
                          "failed", "canceled"):
            raise invalid("Invalid refund status: %s" % status, "status")
        ch = self.charges[re_["charge"]]
        gone = ("failed", "canceled")
        if status in gone and re_["status"] not in gone:
            ch["amount_refunded"] -= re_["amount"]
        elif status not in gone and re_["status"] in gone:
            ch["amount_refunded"] += re_["amount"]
        ch["refunded"] = ch["amount_refunded"] >= ch["amount_captured"]
        re_["status"] = status
        re_["failure_reason"] = (reason or "declined") \
            if status == "failed" else None
        events = [("refund.updated", self.snap(re_)),
                  ("charge.refund.updated", self.snap(re_))]
        if status == "failed":
            events.append(("refund.failed", self.snap(re_)))
        self.emit(events, None)
        return re_

    def balance(self):
        avail = {}
        for ch in self.charges.values():
            avail[ch["currency"]] = avail.get(ch["currency"], 0) + \
                ch["amount_captured"] - ch["amount_refunded"]
        if not avail:
            avail["usd"] = 0
        return {"object": "balance", "livemode": False,
                "available": [{"amount": v, "currency": c,
                               "source_types": {"card": v}}
                              for c, v in sorted(avail.items())],
                "pending": [{"amount": 0, "currency": c,
                             "source_types": {"card": 0}}
                            for c in sorted(avail)]}

    def account(self):
        return {"id": "acct_fake_000001", "object": "account",
                "business_profile": {"name": "Pivota Fake Merchant"},
                "charges_enabled": True, "country": "US",
                "default_currency": "usd", "payouts_enabled": True,
                "type": "standard"}

    def complete(self, pid):
        """The customer finished 3DS, or an async payment settled."""
        pi = self.intent(pid)
        if pi["status"] not in ("requires_action", "processing"):
            raise invalid("PaymentIntent %s is %s, not requires_action"
                          % (pid, pi["status"]))
        events = []
        self.settle(pi, events)
        self.emit(events, None)
        return pi

    # --- dispatch -------------------------------------------------------

    def execute(self, method, path, form, events):
        """Runs one /v1 request: (status, body object)."""
        expand = as_list(form.get("expand"))
        m = re.fullmatch(r"/v1/payment_intents(?:/([^/]+)(?:/(\w+))?)?",
                         path)
        if m is not None:
            pid, verb = m.group(1), m.group(2)
            if pid is None and method == "POST":
                return 200, self.render_intent(
                    self.op_create(form, events), expand)
            if pid is None:
                return 200, {"object": "list", "url": "/v1/payment_intents",
                             "has_more": False,
                             "data": [self.render_intent(p) for p in
                                      reversed(list(self.intents.values()))]}
            pi = self.intent(pid)
            if verb is None and method == "GET":
                return 200, self.render_intent(pi, expand)
            ops = {None: self.op_update, "capture": self.op_capture,
                   "cancel": self.op_cancel}
            if method == "POST" and verb == "confirm":
                self.confirm(pi, form, events)
                return 200, self.render_intent(pi, expand)
            if method == "POST" and verb in ops:
                return 200, self.render_intent(ops[verb](pi, form, events),
                                               expand)
        m = re.fullmatch(r"/v1/refunds(?:/([^/]+))?", path)
        if m is not None:
            if m.group(1) is None and method == "POST":
                return 200, self.op_refund(form, events)
            if m.group(1) is not None and method == "GET":
                re_ = self.refunds.get(m.group(1))
                if re_ is None:
                    raise missing("refund", m.group(1))
                return 200, re_
        if path == "/v1/balance" and method == "GET":
            return 200, self.balance()
        if path == "/v1/account" and method == "GET":
            return 200, self.account()
        raise StripeError(404, "invalid_request_error",
                          "Unrecognized request URL (%s: %s)." %
                          (method, path), store=False)

    # --- webhooks -------------------------------------------------------

    def make_event(self, type_, obj, request=None):
        evt = {"id": self.next_id("evt"), "object": "event",
               "api_version": self.cfg["api_version"],
               "created": self.now(),
               "data": {"object": obj},
               "livemode": False, "pending_webhooks": 1,
               "request": request or {"id": None, "idempotency_key": None},
               "type": type_}
        return evt

    def emit(self, events, request):
        """Makes events for the state changes of one request and queues
        them (or holds them).  Called with the lock held."""
        for type_, obj in events:
            evt = self.make_event(type_, obj, request)
            rec = {"event": evt, "deliveries": []}
            self.events.append(rec)
            if self.cfg["hold_webhooks"]:
                self.held.append(rec)
            elif self.cfg["webhook_url"]:
                self.outbox.put((self.epoch, rec, {}))

    def deliver_loop(self):
        while True:
            epoch, rec, spec = self.outbox.get()
            with self.lock:
                stale = epoch != self.epoch
            if not stale:
                self.deliver(rec, spec)

    def deliver(self, rec, spec):
        """POSTs one event, signed, to its URL; records what came back."""
        with self.lock:
            cfg = dict(self.cfg)
            now = self.now()
        url = spec.get("url") or cfg["webhook_url"]
        body = spec.get("body")
        raw = body.encode() if isinstance(body, str) else \
            json.dumps(rec["event"], separators=(",", ":")).encode()
        secret = spec.get("secret") or cfg["webhook_secret"]
        times = spec.get("duplicate") or 0
        times = 1 + (1 if times is True else int(times))
        if spec.get("delay"):
            time.sleep(float(spec["delay"]) / 1000.0)
        out = []
        for _ in range(times):
            t = now - 301 if spec.get("stale") is True else \
                now - int(spec["stale"]) if spec.get("stale") else now
            v1 = sign(secret + "-wrong" if spec.get("bad_signature")
                      else secret, t, raw)
            header = "t=%d,v1=%s" % (t, v1)
            d = {"signature": header, "body": raw.decode()}
            if url:
                d.update(post(url, raw, header))
            out.append(d)
        with self.lock:
            rec["deliveries"].extend(out)
        return out


def post(url, raw, header):
    host = urllib.parse.urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        return {"status": 0, "error": "webhooks go to loopback URLs only"}
    req = urllib.request.Request(url, data=raw, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": header, "User-Agent": "Stripe/1.0 (+fake)"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return {"status": r.status,
                    "response": r.read().decode("utf-8", "replace")}
    except urllib.error.HTTPError as e:
        return {"status": e.code,
                "response": e.read().decode("utf-8", "replace")}
    except (urllib.error.URLError, OSError) as e:
        return {"status": 0, "error": str(e)}


def canonical(form):
    return hashlib.sha256(json.dumps(form, sort_keys=True).encode()) \
        .hexdigest()


def normalize(f):
    """A fault entry as an object with a "kind", "status" or "delay_ms"."""
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


def fault_body(status):
    if status == 429:
        return {"error": {"type": "invalid_request_error",
                          "code": "rate_limit",
                          "message": "Too many requests hit the API too "
                          "quickly. We recommend an exponential backoff of "
                          "your requests."}}
    return {"error": {"type": "api_error",
                      "message": "An unknown error occurred (fake %d)."
                      % status}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-stripe/1"
    fake = None  # set in main()

    def setup(self):
        super().setup()
        # Headers and body go out in two writes: without this, Nagle and
        # the client's delayed ACK add 40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):
        if self.fake.args.verbose:
            sys.stderr.write("fake_stripe: " + (fmt % args) + "\n")

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send(self, status, data, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def reply(self, status, obj, headers=None):
        self.send(status, json.dumps(obj, indent=2).encode(), headers)

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

    def do_DELETE(self):
        self.route("DELETE")

    def route(self, method):
        url = urllib.parse.urlsplit(self.path)
        raw = self.body()
        if url.path.startswith("/__fake/"):
            return self.control(method, url, raw)
        if not url.path.startswith("/v1/"):
            return self.reply(404, {"error": {
                "type": "invalid_request_error",
                "message": "Unrecognized request URL"}})
        return self.serve_v1(method, url, raw)

    def authorized(self, key):
        auth = self.headers.get("Authorization") or ""
        given = None
        if auth.startswith("Bearer "):
            given = auth[7:].strip()
        elif auth.startswith("Basic "):
            try:
                given = base64.b64decode(auth[6:]).decode().split(":")[0]
            except (ValueError, UnicodeDecodeError):
                given = None
        return given is not None and given.startswith("sk_test_") and \
            hmac.compare_digest(given, key)

    def serve_v1(self, method, url, raw):
        fake = self.fake
        text = raw.decode("utf-8", "replace")
        rec = {"method": method, "path": self.path,
               "headers": {k.lower(): v for k, v in self.headers.items()},
               "body": text, "form": None, "status": None,
               "replayed": False}
        bad = None
        try:
            form = parse_form(url.query if method != "POST" else text)
        except StripeError as e:
            form, bad = None, e
        rec["form"] = form
        key = self.headers.get("Idempotency-Key") if method == "POST" \
            else None
        hdrs = {"Stripe-Version":
                self.headers.get("Stripe-Version") or API_VERSION}
        if key is not None:
            hdrs["Idempotency-Key"] = key
        # Recording, the key check and claiming the key happen under one
        # lock, so a test that sees a request logged knows it holds its
        # key: a duplicate sent then is a concurrent one (409).
        with fake.lock:
            fake.requests.append(rec)
            rid = "req_fake_%06d" % len(fake.requests)
            hdrs["Request-Id"] = rid
            if bad is not None:
                rec["status"] = bad.status
                return self.reply(bad.status, bad.body, hdrs)
            if not self.authorized(fake.cfg["secret_key"]):
                rec["status"] = 401
                return self.reply(401, {"error": {
                    "type": "invalid_request_error",
                    "message": "Invalid API Key provided: %s" %
                    mask(self.headers.get("Authorization"))}}, hdrs)
            if key is not None:
                if self.idem_check(key, method, url.path, form, rec, hdrs):
                    return None
                fake.inflight.add(key)
            fault = None
            for i, f in enumerate(fake.faults):
                if f.get("path") in (None, url.path):
                    fault = fake.faults.pop(i)
                    break
        try:
            if fault is not None and self.early_fault(fault, rec, hdrs):
                return None
            with fake.lock:
                status, data = self.run(method, url.path, form, key, rid)
        finally:
            with fake.lock:
                fake.inflight.discard(key)
        rec["status"] = status
        if fault is not None and fault.get("kind") == "hangup_after":
            rec["status"] = 0
            return self.hang_up()
        return self.send(status, data, hdrs)

    def idem_check(self, key, method, path, form, rec, hdrs):
        """Replays, refuses or lets through a keyed POST (lock held).
        Returns True when it has answered."""
        fake = self.fake
        if key in fake.inflight:
            rec["status"] = 409
            hdrs["Stripe-Should-Retry"] = "true"
            self.reply(409, {"error": {
                "type": "invalid_request_error", "code": "lock_timeout",
                "message": "There is currently another in-progress request "
                "using this Stripe token (probably means you clicked twice). "
                "Please try again."}}, hdrs)
            return True
        saved = fake.idem.get(key)
        if saved is None:
            return False
        if saved["method"] != method or saved["path"] != path or \
                saved["hash"] != canonical(form):
            rec["status"] = 400
            self.reply(400, {"error": {
                "type": "idempotency_error",
                "message": "Keys for idempotent requests can only be used "
                "with the same parameters they were first used with. Try "
                "using a key other than '%s' if you meant to execute a "
                "different request." % key}}, hdrs)
            return True
        rec["status"] = saved["status"]
        rec["replayed"] = True
        hdrs["Idempotent-Replayed"] = "true"
        hdrs["Original-Request"] = saved["request_id"]
        self.send(saved["status"], saved["data"], hdrs)
        return True

    def early_fault(self, fault, rec, hdrs):
        """Applies a fault that answers instead of the request."""
        if fault.get("delay_ms"):
            time.sleep(fault["delay_ms"] / 1000.0)
        if fault.get("kind") == "hangup":
            rec["status"] = 0
            self.hang_up()
            return True
        status = fault.get("status")
        if not status:
            return False
        retry = fault.get("should_retry")
        if retry is None and status >= 500:
            retry = True
        if retry is not None:
            hdrs["Stripe-Should-Retry"] = "true" if retry else "false"
        rec["status"] = status
        body = fault.get("body") or fault_body(status)
        self.reply(status, body, hdrs)
        return True

    def run(self, method, path, form, key, rid):
        """Executes the request and stores its answer under key (lock
        held).  Returns (status, bytes)."""
        fake = self.fake
        events = []
        store = True
        try:
            status, obj = fake.execute(method, path, form, events)
        except StripeError as e:
            status, obj, store = e.status, e.body, e.store
        data = json.dumps(obj, indent=2).encode()
        if key is not None and store:
            fake.idem[key] = {"method": method, "path": path,
                              "hash": canonical(form), "status": status,
                              "data": data, "request_id": rid}
        fake.emit(events, {"id": rid, "idempotency_key": key})
        return status, data

    def control(self, method, url, raw):
        fake = self.fake
        what = url.path[len("/__fake/"):]
        try:
            arg = json.loads(raw) if raw else {}
        except ValueError:
            return self.reply(400, {"error": "body is not JSON"})
        m = re.fullmatch(r"3ds/(\w+)", what)
        if m is not None or (what == "complete_action" and method == "POST"):
            with fake.lock:
                try:
                    pi = fake.complete(m.group(1) if m else arg.get("id"))
                except StripeError as e:
                    return self.reply(e.status, e.body)
                return self.reply(200, fake.render_intent(pi))
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
            if what == "intents":
                return self.reply(200, {"intents": [
                    fake.render_intent(p) for p in fake.intents.values()]})
            if what == "refunds":
                return self.reply(200, {"refunds":
                                        list(fake.refunds.values())})
            if what == "refund_status" and method == "POST":
                try:
                    return self.reply(200, fake.refund_status(
                        arg.get("id"), arg.get("status"),
                        arg.get("failure_reason")))
                except StripeError as e:
                    return self.reply(e.status, e.body)
            if what == "events":
                return self.reply(200, {"events": fake.events})
            if what == "release" and method == "POST":
                held, fake.held = fake.held, []
                if arg.get("order", "sent") == "reverse":
                    held.reverse()
            if what == "webhook" and method == "POST":
                try:
                    rec = self.event_for(arg)
                except (ValueError, StripeError) as e:
                    return self.reply(400, {"error": str(e)})
        if what == "release" and method == "POST":
            out = [{"id": r["event"]["id"], "type": r["event"]["type"],
                    "deliveries": fake.deliver(r, {})} for r in held]
            return self.reply(200, {"released": out})
        if what == "webhook" and method == "POST":
            out = fake.deliver(rec, arg)
            return self.reply(200, {"id": rec["event"]["id"],
                                    "type": rec["event"]["type"],
                                    "body": out[0]["body"],
                                    "signature": out[0]["signature"],
                                    "deliveries": out})
        return self.reply(404, {"error": "no such control path"})

    def event_for(self, arg):
        """One on-demand event (lock held): its object is given, or named
        by id, or the newest PaymentIntent."""
        fake = self.fake
        type_ = arg.get("type") or "payment_intent.succeeded"
        obj = arg.get("object")
        if isinstance(obj, str):
            obj = fake.intents.get(obj) or fake.refunds.get(obj) or \
                fake.charges.get(obj)
            if obj is None:
                raise ValueError("no such object %r" % arg["object"])
            if obj.get("object") == "payment_intent":
                obj = fake.render_intent(obj)
        elif obj is None:
            if not fake.intents:
                raise ValueError("no object given and no PaymentIntent")
            obj = fake.render_intent(list(fake.intents.values())[-1])
        rec = {"event": fake.make_event(type_, fake.snap(obj)),
               "deliveries": []}
        fake.events.append(rec)
        return rec


def mask(auth):
    key = (auth or "").split(" ")[-1]
    return key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 \
        else "****"


def self_test():
    """The signer against external-apis.md 1.9, the form parser against
    1.2, and one decline through the status machine."""
    here = os.path.dirname(os.path.abspath(__file__))
    fixture = os.path.join(here, "..", "fixtures", "stripe")
    with open(os.path.join(fixture, "payment_intent.succeeded.json"),
              "rb") as f:
        body = f.read()
    assert hashlib.sha256(body).hexdigest() == \
        "fc18d2bf709b616ed2e5cdb4a2b71165d5988c6ed9d6e923df5f8b4d9cc49eeb"
    assert sign(VECTOR_SECRET, VECTOR_T, body) == VECTOR_V1
    assert sign(VECTOR_ROTATED, VECTOR_T, body) == VECTOR_ROTATED_V1
    with open(os.path.join(fixture, "payment_intent.succeeded.sig")) as f:
        assert f.read().strip() == "t=%d,v1=%s" % (VECTOR_T, VECTOR_V1)
    form = parse_form("amount=2000&metadata[order_id]=1001&expand[]=a"
                      "&expand[]=b&items[0][price]=p&items[1][price]=q"
                      "&automatic_payment_methods%5Benabled%5D=true")
    assert form == {"amount": "2000", "metadata": {"order_id": "1001"},
                    "expand": ["a", "b"],
                    "items": [{"price": "p"}, {"price": "q"}],
                    "automatic_payment_methods": {"enabled": "true"}}, form
    assert parse_form("expand[0]=x&expand[1]=y")["expand"] == ["x", "y"]
    args = argparse.Namespace(key="sk_test_x", secret=VECTOR_SECRET)
    fake = Fake(args)
    events = []
    try:
        fake.execute("POST", "/v1/payment_intents", parse_form(
            "amount=500&currency=usd&confirm=true"
            "&payment_method=pm_card_chargeDeclined"
            "&automatic_payment_methods[allow_redirects]=never"), events)
        raise AssertionError("no decline")
    except StripeError as e:
        assert e.status == 402
        assert e.body["error"]["decline_code"] == "generic_decline"
        assert e.body["error"]["payment_intent"]["status"] == \
            "requires_payment_method"
    assert fake.intents["pi_fake_000001"]["last_payment_error"]
    print("fake_stripe: self-test ok")


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
    ap.add_argument("--id-tag", default="",
                    help="letters put in every id (pi_fake_<tag>000001), so "
                    "several fakes over one database never reuse an id")
    ap.add_argument("--key", default="sk_test_fake_0123456789abcdef")
    ap.add_argument("--secret", default="whsec_fake_0123456789abcdef")
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
