#!/usr/bin/env python3
"""A loopback fake of the Shopify Admin GraphQL API, for Pivota's tests.

Standard library only (Debian's python3).  It listens on 127.0.0.1 and
speaks POST /admin/api/{version}/graphql.json, recognising the operations
of external-apis.md 2.3 by their root field:

  shop                      name, myshopifyDomain, currencyCode
  products(first, after)    cursor pagination (sortKey ID) over a generated
                            catalogue; nested variants(first: N) and
                            media(first: N) are sized from the query text
  product(id)               one product, variants(first: N, after: $after)
  orderCreate(order, options)
                            a paid order; unknown variants -> userErrors
  orders(first, query)      "tag:X" finds orders by tag
  order(id)                 one order, with lineItems { id quantity variant }
                            and refunds { id note totalRefundedSet }
  refundCreate(input)       a refund of line items (lineItemId, quantity,
                            restockType), shipping.amount and REFUND
                            transactions; more than was paid or than a
                            line has left -> userErrors

Like Shopify it answers 401 without the right X-Shopify-Access-Token,
echoes X-Shopify-API-Version (an unsupported but well-formed version falls
forward to the oldest supported one), puts extensions.cost on every
GraphQL response and drains a leaky bucket, answering THROTTLED when the
requested cost is not available and MAX_COST_EXCEEDED above the single
query limit.  Ids are deterministic: gid://shopify/Product/N for N in
1..count, gid://shopify/ProductVariant/N00M, gid://shopify/Order/1001...

Control channel (JSON in, JSON out), for fault injection and assertions:

  GET  /__fake/health     {"ok": true, "port": P}
  POST /__fake/reset      everything back to the start-up state
  POST /__fake/config     {"token", "shop", "shop_name", "currency",
                           "bucket_max", "bucket_available", "restore_rate",
                           "max_query_cost", "throttle_deficit",
                           "webhook_secret", "webhook_api_version",
                           "index_lag_ms", "now"} (any subset)
  POST /__fake/catalog    {"count": N, "variants": K, "big": {"7": 60},
                           "titles": {"3": "a title of one's own"}}
  POST /__fake/faults     {"next": [500, "throttle", "hangup", 429, ...]}
                          applied to the next GraphQL requests in order.
                          An entry is a status code, a name ("throttle",
                          "hangup" = close without answering, "hangup_after"
                          = do the work, then close without answering,
                          "max_cost", "graphql_error"), or an object
                          {"status", "body", "retry_after", "delay_ms",
                           "delay_after_ms" (do the work, then wait),
                          "kind", "field", "requested", "available",
                          "message", "code"} where "field" limits it to
                          one root field and a throttle reports
                          "requested"/"available" if given.
                          {"clear": true} empties the queue.
  GET  /__fake/faults     what is still queued
  GET  /__fake/requests   every GraphQL request: method, path, headers
                          (lower-case names), body, root field, status;
                          ?since=N skips the first N
  GET  /__fake/orders     the orders created, as stored
  GET  /__fake/refunds    the refunds created, as stored (?order=gid)
  POST /__fake/webhook    {"url", "topic", "body", "bad_hmac", "duplicate",
                           "webhook_id", "secret", "shop", "order",
                           "product", "fulfillment"}: POSTs a webhook
                          signed like Shopify (base64 HMAC-SHA256 of the
                          raw body with the app secret) to a loopback url;
                          without "body" one is built from the topic and
                          the stored order or product.  "duplicate": true
                          (or a count) re-sends with the same webhook id.

Usage: fake_shopify.py [--port P] [--port-file F] [--token T] [--shop D]
       [--count N] [--secret S] [--exit-with-parent] [--self-test]
The chosen port is printed on stdout (one line) once it is listening.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SUPPORTED_VERSIONS = ["2025-10", "2026-01", "2026-04", "2026-07", "2026-10"]
DOCS = "https://shopify.dev/api/usage/rate-limits"
BAD_TOKEN = ("[API] Invalid API key or access token "
             "(unrecognized login or wrong password)")
STATUS_BODIES = {
    401: BAD_TOKEN,
    402: "Unavailable Shop",
    403: "[API] This action requires merchant approval for the scope.",
    404: "Not Found",
    423: "Locked",
    429: "Exceeded GraphQL rate limit. Reduce request rates.",
}
VENDORS = ["Acme", "Northwind", "Globex", "Initech"]
TYPES = ["Hoodie", "T-Shirt", "Sneakers", "Backpack", "Mug"]
SIZES = ["S", "M", "L", "XL"]
COLORS = ["Black", "Red", "Blue", "Green", "White"]


def defaults(args):
    return {
        "token": args.token,
        "shop": args.shop,
        "shop_name": "Pivota Fake Outfitters",
        "currency": "USD",
        "bucket_max": 2000.0,
        "restore_rate": 100.0,
        "max_query_cost": 1000,
        "throttle_deficit": 50.0,
        "webhook_secret": args.secret,
        "webhook_api_version": "2026-07",
        "index_lag_ms": 0,
        "now": None,
    }


def gid(kind, n):
    return "gid://shopify/%s/%d" % (kind, n)


def gid_num(s, kind):
    m = re.fullmatch(r"gid://shopify/%s/(\d+)" % kind, s or "")
    return int(m.group(1)) if m else None


def cursor(n):
    raw = json.dumps({"last_id": n}, separators=(",", ":")).encode()
    return base64.b64encode(raw).decode()


def uncursor(c):
    """The id a cursor points after, or None if it is not ours."""
    try:
        return int(json.loads(base64.b64decode(c, validate=True))["last_id"])
    except (ValueError, KeyError, TypeError):
        return None


def make_catalog(count, variants=None, big=None, titles=None):
    """count products with ids 1..count and a few variants each; titles
    replaces the generated title of the products it names."""
    big = {int(k): int(v) for k, v in (big or {}).items()}
    titles = {int(k): str(v) for k, v in (titles or {}).items()}
    out = []
    for i in range(1, count + 1):
        nv = big.get(i, variants if variants else 1 + i % 3)
        vs = []
        for j in range(1, nv + 1):
            size, color = SIZES[j % len(SIZES)], COLORS[(j // 4) % len(COLORS)]
            qty = (i * 7 + j) % 20
            vs.append({
                "num": i * 1000 + j,
                "id": gid("ProductVariant", i * 1000 + j),
                "title": "%s / %s" % (size, color),
                "sku": "SKU-%d-%d" % (i, j),
                "price": "%d.%02d" % (10 + i % 90, (j * 5) % 100),
                "compareAtPrice": None,
                "inventoryQuantity": qty,
                "availableForSale": qty > 0,
                "selectedOptions": [{"name": "Size", "value": size},
                                    {"name": "Color", "value": color}],
            })
        kind = TYPES[i % len(TYPES)]
        out.append({
            "num": i,
            "id": gid("Product", i),
            "title": titles.get(i, "%s %s No. %d" % (
                VENDORS[i % len(VENDORS)], kind, i)),
            "handle": "%s-%d" % (kind.lower(), i),
            "descriptionHtml": "<p>A fine %s, number %d.</p>" % (kind, i),
            "description": "A fine %s, number %d." % (kind, i),
            "vendor": VENDORS[i % len(VENDORS)],
            "productType": kind,
            "tags": [kind.lower(), "fake"],
            "status": "ACTIVE",
            "updatedAt": "2026-01-01T00:%02d:%02dZ" % (i // 60 % 60, i % 60),
            "image": "https://cdn.shopify.com/s/files/1/fake/%d.jpg" % i,
            "variants": vs,
        })
    return out


def first_arg(query, field):
    """N in `field(first: N ...)` of the query text, or 0 if absent."""
    m = re.search(r"\b%s\s*\(\s*first\s*:\s*(\d+)" % field, query)
    return int(m.group(1)) if m else 0


def root_field(query):
    """The first field of the operation's selection set (aliases skipped)."""
    m = re.search(r"\{\s*(?:\w+\s*:\s*)?(\w+)", query or "")
    return m.group(1) if m else None


class Fake:
    """All state, behind one lock: the handler threads share it."""

    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.port = 0
        self.reset()

    def reset(self):
        self.cfg = defaults(self.args)
        self.catalog = make_catalog(self.args.count)
        self.faults = []
        self.requests = []
        self.orders = []
        self.refunds = []
        self.refund_seq = 0
        self.webhooks = []
        self.order_seq = 1000
        self.webhook_seq = 0
        self.available = self.cfg["bucket_max"]
        self.bucket_t = time.monotonic()

    def now_iso(self):
        if self.cfg["now"]:
            return self.cfg["now"]
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    # The leaky bucket: refills at restore_rate points per second.
    def bucket(self):
        t = time.monotonic()
        self.available = min(self.cfg["bucket_max"], self.available +
                             (t - self.bucket_t) * self.cfg["restore_rate"])
        self.bucket_t = t
        return self.available

    def cost(self, requested, actual, available=None):
        if available is None:
            available = self.available
        return {"requestedQueryCost": requested, "actualQueryCost": actual,
                "throttleStatus": {
                    "maximumAvailable": float(self.cfg["bucket_max"]),
                    "currentlyAvailable": round(available, 1),
                    "restoreRate": float(self.cfg["restore_rate"])}}

    def throttled(self, requested, available):
        return {"errors": [{"message": "Throttled",
                            "extensions": {"code": "THROTTLED",
                                           "documentation": DOCS}}],
                "extensions": {"cost": self.cost(requested, None,
                                                 available)}}

    def take_fault(self, root):
        for i, f in enumerate(self.faults):
            if f.get("field") in (None, root):
                return self.faults.pop(i)
        return None

    # Nodes as a query returns them; the fake returns every field it
    # knows whatever the selection, which a client must tolerate anyway.
    def variant_conn(self, p, first, after=None):
        vs = [v for v in p["variants"] if after is None or v["num"] > after]
        page = vs[:first]
        nodes = [{k: v[k] for k in v if k != "num"} for v in page]
        return {"nodes": nodes,
                "pageInfo": {"hasNextPage": len(vs) > len(page),
                             "endCursor": cursor(page[-1]["num"])
                             if page else None}}

    def product_node(self, p, vfirst, mfirst):
        img = {"url": p["image"], "altText": p["title"]}
        node = {k: p[k] for k in p if k not in ("num", "variants", "image")}
        node["onlineStoreUrl"] = "https://%s/products/%s" % (
            self.cfg["shop"], p["handle"])
        node["featuredImage"] = img
        node["featuredMedia"] = {"mediaContentType": "IMAGE",
                                 "preview": {"image": img}}
        node["images"] = {"nodes": [img] if mfirst else []}
        node["media"] = {"nodes": [node["featuredMedia"]] if mfirst else []}
        if vfirst:
            node["variants"] = self.variant_conn(p, vfirst)
        return node

    def order_node(self, o):
        keep = ("id", "name", "email", "tags", "createdAt",
                "displayFinancialStatus", "displayFulfillmentStatus",
                "totalPriceSet", "shippingAddress")
        node = {k: o[k] for k in keep}
        node["lineItems"] = {"nodes": [
            {"id": li["id"], "variant": {"id": li["variantId"]},
             "quantity": li["quantity"], "sku": li["sku"],
             "title": li["title"]}
            for li in o["lineItems"]]}
        node["refunds"] = [{"id": r["id"], "note": r["note"],
                            "totalRefundedSet": r["totalRefundedSet"]}
                           for r in o.get("refunds", [])]
        node["fulfillments"] = []
        return node

    def estimate(self, root, q, v):
        """The requested cost, Shopify-style: 1 per object, a connection
        2 + first times what one node costs; a mutation 10."""
        vfirst = first_arg(q, "variants")
        if root == "products":
            first = v.get("first") if isinstance(v.get("first"), int) else 1
            mfirst = max(first_arg(q, "media"), first_arg(q, "images"))
            return 2 + first * (2 + (2 + vfirst if vfirst else 0) +
                                (2 + mfirst if mfirst else 0))
        if root == "product":
            return 3 + vfirst
        if root == "orders":
            first = v.get("first") if isinstance(v.get("first"), int) else 1
            return 2 + first * 3
        return {"orderCreate": 10, "refundCreate": 10,
                "order": 3}.get(root, 1)

    # One resolver per root field: (data, actual cost), or ("error",
    # message, code) for a top-level GraphQL error.
    def q_shop(self, q, v):
        return {"shop": {"name": self.cfg["shop_name"],
                         "myshopifyDomain": self.cfg["shop"],
                         "currencyCode": self.cfg["currency"],
                         "plan": {"displayName": "Basic"}}}, 1

    def q_products(self, q, v):
        first = v.get("first")
        if not isinstance(first, int) or not 1 <= first <= 250:
            return "error", "first must be between 1 and 250", "BAD_REQUEST"
        after = None
        if v.get("after") is not None:
            after = uncursor(v["after"])
            if after is None:
                return "error", "Invalid cursor for current pagination", \
                    "BAD_REQUEST"
        vfirst = first_arg(q, "variants")
        mfirst = max(first_arg(q, "media"), first_arg(q, "images"))
        rest = [p for p in self.catalog if after is None or p["num"] > after]
        page = rest[:first]
        nodes = [self.product_node(p, vfirst, mfirst) for p in page]
        actual = 2 + sum(2 + (2 + len(n["variants"]["nodes"])
                              if vfirst else 0) + (3 if mfirst else 0)
                         for n in nodes)
        data = {"products": {"nodes": nodes, "pageInfo": {
            "hasNextPage": len(rest) > len(page),
            "hasPreviousPage": after is not None,
            "startCursor": cursor(page[0]["num"]) if page else None,
            "endCursor": cursor(page[-1]["num"]) if page else None}}}
        return data, actual

    def q_product(self, q, v):
        n = gid_num(v.get("id"), "Product")
        p = next((p for p in self.catalog if p["num"] == n), None)
        if p is None:
            return {"product": None}, 1
        after = uncursor(v["after"]) if v.get("after") else None
        node = {"id": p["id"], "title": p["title"],
                "variants": self.variant_conn(
                    p, first_arg(q, "variants") or 1, after)}
        return {"product": node}, 3 + len(node["variants"]["nodes"])

    def q_order_create(self, q, v):
        order = v.get("order") or {}
        errors, lines = [], []
        items = order.get("lineItems")
        if not isinstance(items, list) or not items:
            errors.append({"field": ["order", "lineItems"],
                           "message": "Line items can't be blank",
                           "code": "INVALID"})
            items = []
        variants = {v2["id"]: (p, v2) for p in self.catalog
                    for v2 in p["variants"]}
        for i, li in enumerate(items):
            found = variants.get(li.get("variantId"))
            qty = li.get("quantity")
            if found is None:
                errors.append({"field": ["order", "lineItems", str(i),
                                         "variantId"],
                               "message": "Product variant does not exist",
                               "code": "PRODUCT_VARIANT_DOES_NOT_EXIST"})
            elif not isinstance(qty, int) or qty < 1:
                errors.append({"field": ["order", "lineItems", str(i),
                                         "quantity"],
                               "message": "Quantity must be at least 1",
                               "code": "INVALID"})
            else:
                p, v2 = found
                lines.append({"id": gid("LineItem", (self.order_seq + 1) *
                                        1000 + len(lines) + 1),
                              "variantId": v2["id"], "quantity": qty,
                              "sku": v2["sku"], "price": v2["price"],
                              "title": p["title"]})
        if errors:
            return {"orderCreate": {"order": None, "userErrors": errors}}, 10
        self.order_seq += 1
        total = sum(int(round(float(li["price"]) * 100)) * li["quantity"]
                    for li in lines)
        currency = order.get("currency") or self.cfg["currency"]
        tags = order.get("tags") or []
        if isinstance(tags, str):
            tags = [t.strip() for t in tags.split(",") if t.strip()]
        paid = order.get("financialStatus") == "PAID"
        stored = {
            "id": gid("Order", self.order_seq),
            "name": "#%d" % self.order_seq,
            "email": order.get("email"),
            "tags": tags,
            "createdAt": self.now_iso(),
            "createdMono": time.monotonic(),
            "displayFinancialStatus": "PAID" if paid else "PENDING",
            "displayFulfillmentStatus": "UNFULFILLED",
            "totalPriceSet": {"shopMoney": {
                "amount": "%d.%02d" % (total // 100, total % 100),
                "currencyCode": currency}},
            "shippingAddress": order.get("shippingAddress"),
            "lineItems": lines,
            "transactions": order.get("transactions") or [],
            "note": order.get("note"),
            "options": v.get("options") or {},
            "input": order,
            "totalMinor": total,
            "refunds": [],
        }
        self.orders.append(stored)
        return {"orderCreate": {"order": self.order_node(stored),
                                "userErrors": []}}, 10

    def q_orders(self, q, v):
        first = v.get("first") if isinstance(v.get("first"), int) else 1
        first = max(1, min(first, 250))
        m = re.search(r"""tag:(?:"([^"]*)"|'([^']*)'|(\S+))""",
                      v.get("query") or "")
        tag = next((g for g in m.groups() if g is not None), None) \
            if m else None
        lag = self.cfg["index_lag_ms"] / 1000.0
        t = time.monotonic()
        found = [o for o in self.orders if t - o["createdMono"] >= lag and
                 (tag is None or tag.lower() in
                  [x.lower() for x in o["tags"]])]
        page = found[:first]
        return {"orders": {"nodes": [self.order_node(o) for o in page],
                           "pageInfo": {"hasNextPage": len(found) > first,
                                        "endCursor": None}}}, \
            2 + len(page) * 3

    def q_order(self, q, v):
        o = next((o for o in self.orders if o["id"] == v.get("id")), None)
        return {"order": self.order_node(o) if o else None}, 3

    def q_refund_create(self, q, v):
        inp = v.get("input") or {}
        o = next((o for o in self.orders if o["id"] == inp.get("orderId")),
                 None)

        def fail(field, message, code="INVALID"):
            return {"refundCreate": {"refund": None, "order": None,
                                     "userErrors": [{
                                         "field": field, "message": message,
                                         "code": code}]}}, 10
        if o is None:
            return fail(["orderId"], "Order does not exist", "NOT_FOUND")
        done = {}
        for r in o["refunds"]:
            for li in r["refundLineItems"]:
                done[li["lineItemId"]] = done.get(li["lineItemId"], 0) + \
                    li["quantity"]
        items = []
        for i, li in enumerate(inp.get("refundLineItems") or []):
            line = next((x for x in o["lineItems"]
                         if x["id"] == li.get("lineItemId")), None)
            qty = li.get("quantity")
            if line is None:
                return fail(["refundLineItems", str(i), "lineItemId"],
                            "Line item does not exist")
            if not isinstance(qty, int) or qty < 1 or \
                    done.get(line["id"], 0) + qty > line["quantity"]:
                return fail(["refundLineItems", str(i), "quantity"],
                            "Quantity cannot refund more items than were "
                            "purchased")
            if li.get("restockType", "NO_RESTOCK") not in \
                    ("RETURN", "CANCEL", "NO_RESTOCK"):
                return fail(["refundLineItems", str(i), "restockType"],
                            "Invalid restock type")
            items.append({"lineItemId": line["id"], "quantity": qty,
                          "restockType": li.get("restockType",
                                                "NO_RESTOCK")})
        amount = 0
        for i, t in enumerate(inp.get("transactions") or []):
            m = re.fullmatch(r"(\d+)(?:\.(\d{1,2}))?", str(t.get("amount")))
            if not m or t.get("kind") != "REFUND":
                return fail(["transactions", str(i), "amount"],
                            "Invalid refund transaction")
            amount += int(m.group(1)) * 100 + int((m.group(2) or "0")
                                                  .ljust(2, "0"))
        refunded = sum(r["amountMinor"] for r in o["refunds"])
        if amount + refunded > o["totalMinor"]:
            return fail(["transactions", "0", "amount"],
                        "Refund amount exceeds the amount paid")
        self.refund_seq += 1
        currency = o["totalPriceSet"]["shopMoney"]["currencyCode"]
        stored = {"id": gid("Refund", self.refund_seq),
                  "orderId": o["id"], "note": inp.get("note"),
                  "notify": inp.get("notify"), "amountMinor": amount,
                  "totalRefundedSet": {"shopMoney": {
                      "amount": "%d.%02d" % (amount // 100, amount % 100),
                      "currencyCode": currency}},
                  "refundLineItems": items,
                  "shipping": inp.get("shipping"),
                  "transactions": inp.get("transactions") or [],
                  "createdAt": self.now_iso()}
        o["refunds"].append(stored)
        self.refunds.append(stored)
        refunded += amount
        o["displayFinancialStatus"] = "REFUNDED" \
            if refunded >= o["totalMinor"] else "PARTIALLY_REFUNDED"
        return {"refundCreate": {
            "refund": {"id": stored["id"],
                       "totalRefundedSet": stored["totalRefundedSet"]},
            "order": self.order_node(o), "userErrors": []}}, 10

    RESOLVERS = {"shop": q_shop, "products": q_products,
                 "product": q_product, "orderCreate": q_order_create,
                 "orders": q_orders, "order": q_order,
                 "refundCreate": q_refund_create}

    def graphql(self, root, query, variables):
        """Runs one operation under the bucket; returns the body."""
        fn = self.RESOLVERS.get(root)
        if fn is None:
            return {"errors": [{
                "message": "Field '%s' doesn't exist on type 'QueryRoot'"
                % root, "extensions": {"code": "undefinedField"}}],
                "extensions": {"cost": self.cost(0, 0)}}
        self.bucket()
        requested = self.estimate(root, query, variables)
        if requested > self.cfg["max_query_cost"]:
            return {"errors": [{
                "message": "Query cost is %d, which exceeds the single "
                "query max cost limit (%d)." % (requested,
                                                 self.cfg["max_query_cost"]),
                "extensions": {"code": "MAX_COST_EXCEEDED",
                               "cost": requested,
                               "maxCost": self.cfg["max_query_cost"]}}],
                "extensions": {"cost": self.cost(requested, None)}}
        if requested > self.available:
            return self.throttled(requested, self.available)
        out = fn(self, query, variables)
        if out[0] == "error":
            return {"errors": [{"message": out[1],
                                "extensions": {"code": out[2]}}],
                    "extensions": {"cost": self.cost(requested, 1)}}
        data, actual = out
        self.available -= actual
        return {"data": data,
                "extensions": {"cost": self.cost(requested, actual)}}

    def throttle_fault(self, fault, root, query, variables):
        """An injected THROTTLED, throttle_deficit points short unless the
        fault names "requested" and "available"; the bucket is untouched."""
        requested = fault.get("requested",
                              self.estimate(root, query, variables))
        available = fault.get("available", max(
            0.0, requested - self.cfg["throttle_deficit"]))
        return self.throttled(requested, available)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-shopify/1"
    fake = None  # set in main()

    def setup(self):
        super().setup()
        # Headers and body go out in two writes: without this, Nagle and
        # the client's delayed ACK add 40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):
        if self.fake.args.verbose:
            sys.stderr.write("fake_shopify: " + (fmt % args) + "\n")

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def reply(self, status, obj, headers=None, raw=None):
        data = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
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
        m = re.fullmatch(r"/admin/api/([^/]+)/graphql\.json", url.path)
        if method != "POST" or m is None:
            return self.reply(404, {"errors": "Not Found"})
        return self.serve_graphql(m.group(1), raw)

    def serve_graphql(self, version, raw):
        fake = self.fake
        rec = {"method": "POST", "path": self.path, "version": version,
               "headers": {k.lower(): v for k, v in self.headers.items()},
               "body": raw.decode("utf-8", "replace"), "root": None,
               "status": None}
        try:
            req = json.loads(raw)
            query, variables = req["query"], req.get("variables") or {}
            rec["root"] = root_field(query)
        except (ValueError, KeyError, TypeError):
            query = variables = None
        with fake.lock:
            fake.requests.append(rec)
            served = self.served_version(version)
            hdrs = {"X-Shopify-API-Version": served or version,
                    "X-Request-Id": "fake-%d" % len(fake.requests)}
            if served is None:
                rec["status"] = 404
                return self.reply(404, {"errors": "Not Found"}, hdrs)
            token = self.headers.get("X-Shopify-Access-Token")
            if token != fake.cfg["token"]:
                rec["status"] = 401
                return self.reply(401, {"errors": BAD_TOKEN}, hdrs)
            if query is None:
                rec["status"] = 400
                return self.reply(400, {"errors": {
                    "query": "Required parameter missing or invalid"}}, hdrs)
            fault = fake.take_fault(rec["root"])
        if fault is not None:
            delay = fault.get("delay_ms")
            if delay:
                time.sleep(delay / 1000.0)
            kind = fault.get("kind")
            if kind == "hangup":
                rec["status"] = 0
                return self.hang_up()
            if kind == "throttle":
                with fake.lock:
                    body = fake.throttle_fault(fault, rec["root"], query,
                                               variables)
                rec["status"] = 200
                return self.reply(200, body, hdrs)
            if kind == "max_cost":
                rec["status"] = 200
                return self.reply(200, {"errors": [{
                    "message": "Query cost exceeds the limit",
                    "extensions": {"code": "MAX_COST_EXCEEDED"}}]}, hdrs)
            if kind == "graphql_error":
                rec["status"] = 200
                return self.reply(200, {"errors": [{
                    "message": fault.get("message", "Internal error"),
                    "extensions": {"code": fault.get(
                        "code", "INTERNAL_SERVER_ERROR")}}]}, hdrs)
            status = fault.get("status")
            if status:
                if status == 429:
                    hdrs["Retry-After"] = str(fault.get("retry_after", "2.0"))
                elif fault.get("retry_after") is not None:
                    hdrs["Retry-After"] = str(fault["retry_after"])
                rec["status"] = status
                body = fault.get("body")
                if body is None:
                    body = {"errors": STATUS_BODIES.get(
                        status, "Internal Server Error")}
                return self.reply(status, body, hdrs)
        with fake.lock:
            body = fake.graphql(rec["root"], query, variables)
            rec["status"] = 200
        if fault is not None and fault.get("kind") == "hangup_after":
            rec["status"] = 0
            return self.hang_up()
        if fault is not None and fault.get("delay_after_ms"):
            # The work is done and visible; the answer is late (a
            # client killed meanwhile never learns the outcome).
            time.sleep(fault["delay_after_ms"] / 1000.0)
        return self.reply(200, body, hdrs)

    def served_version(self, version):
        if version == "unstable" or version in SUPPORTED_VERSIONS:
            return version
        if re.fullmatch(r"20\d\d-(01|04|07|10)", version) and \
                version < SUPPORTED_VERSIONS[0]:
            return SUPPORTED_VERSIONS[0]
        return None

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
                unknown = [k for k in arg if k not in fake.cfg and
                           k != "bucket_available"]
                if unknown:
                    return self.reply(400, {"error": "unknown keys",
                                            "keys": unknown})
                fake.bucket()
                fake.cfg.update({k: v for k, v in arg.items()
                                 if k != "bucket_available"})
                if "bucket_available" in arg:
                    fake.available = float(arg["bucket_available"])
                elif "bucket_max" in arg:
                    fake.available = float(arg["bucket_max"])
                return self.reply(200, fake.cfg)
            if what == "catalog" and method == "POST":
                fake.catalog = make_catalog(int(arg.get("count", 7)),
                                            arg.get("variants"),
                                            arg.get("big"),
                                            arg.get("titles"))
                return self.reply(200, {"count": len(fake.catalog),
                                        "variants": sum(len(p["variants"])
                                                        for p in
                                                        fake.catalog)})
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
            if what == "orders":
                out = [{k: o[k] for k in o if k != "createdMono"}
                       for o in fake.orders]
                return self.reply(200, {"orders": out})
            if what == "refunds":
                q = urllib.parse.parse_qs(url.query)
                want = q.get("order", [None])[0]
                return self.reply(200, {"refunds": [
                    r for r in fake.refunds
                    if want is None or r["orderId"] == want]})
            if what == "webhook" and method == "POST":
                spec = dict(arg)
                fake.webhook_seq += 1
                seq = fake.webhook_seq
        if what == "webhook" and method == "POST":
            try:
                out = send_webhook(fake, spec, seq)
            except ValueError as e:
                return self.reply(400, {"error": str(e)})
            return self.reply(200, out)
        return self.reply(404, {"error": "no such control path"})


def normalize(f):
    """A fault entry as an object with a "kind" or a "status"."""
    if isinstance(f, int):
        return {"status": f}
    if isinstance(f, str):
        return {"kind": f}
    f = dict(f)
    if "kind" not in f and "status" not in f and "delay_ms" not in f \
            and "delay_after_ms" not in f:
        raise ValueError("fault needs kind, status, delay_ms or "
                         "delay_after_ms")
    return f


def rest_id(g):
    return int(g.rsplit("/", 1)[1]) if g else None


def rest_order(fake, o):
    return {
        "id": rest_id(o["id"]), "admin_graphql_api_id": o["id"],
        "name": o["name"], "email": o["email"],
        "financial_status": o["displayFinancialStatus"].lower(),
        "fulfillment_status": None,
        "currency": o["totalPriceSet"]["shopMoney"]["currencyCode"],
        "total_price": o["totalPriceSet"]["shopMoney"]["amount"],
        "tags": ", ".join(o["tags"]), "created_at": o["createdAt"],
        "updated_at": fake.now_iso(),
        "line_items": [{"id": rest_id(o["id"]) * 100 + i,
                        "variant_id": rest_id(li["variantId"]),
                        "title": li["title"], "quantity": li["quantity"],
                        "sku": li["sku"], "price": li["price"]}
                       for i, li in enumerate(o["lineItems"], 1)],
        "shipping_address": o["shippingAddress"],
    }


def build_body(fake, spec, seq):
    """A REST-style payload for topic from the fake's own state."""
    topic = spec.get("topic", "")
    with fake.lock:
        if topic == "app/uninstalled":
            return {"id": 1, "name": fake.cfg["shop_name"],
                    "domain": fake.cfg["shop"],
                    "myshopify_domain": fake.cfg["shop"]}
        if topic.startswith("products/"):
            n = gid_num(spec.get("product"), "Product")
            p = next((p for p in fake.catalog if p["num"] == n), None)
            if p is None:
                raise ValueError("no such product")
            return {"id": p["num"], "admin_graphql_api_id": p["id"],
                    "title": p["title"], "handle": p["handle"],
                    "updated_at": fake.now_iso(),
                    "variants": [{"id": v["num"], "sku": v["sku"],
                                  "price": v["price"],
                                  "inventory_quantity": v["inventoryQuantity"],
                                  "admin_graphql_api_id": v["id"]}
                                 for v in p["variants"]]}
        o = next((o for o in fake.orders if o["id"] == spec.get("order")),
                 None)
        if o is None:
            raise ValueError("no such order")
        order = rest_order(fake, o)
        now = fake.now_iso()
    if topic.startswith("orders/"):
        return order
    if topic.startswith("fulfillments/"):
        f = {"id": 4075788500 + seq, "order_id": order["id"],
             "status": "success", "created_at": now, "updated_at": now,
             "service": "manual", "tracking_company": "UPS",
             "shipment_status": "in_transit", "location_id": 905684977,
             "email": order["email"], "tracking_number": "1Z%06d" % seq,
             "tracking_url": "https://www.ups.com/track?tracknum=1Z%06d" % seq,
             "receipt": {}, "name": "%s.1" % order["name"],
             "admin_graphql_api_id": gid("Fulfillment", 4075788500 + seq),
             "line_items": order["line_items"]}
        f.update(spec.get("fulfillment") or {})
        f.setdefault("tracking_numbers", [f["tracking_number"]])
        f.setdefault("tracking_urls", [f["tracking_url"]])
        return f
    if topic == "refunds/create":
        return {"id": 509562900 + seq, "order_id": order["id"],
                "created_at": now, "note": spec.get("note"),
                "admin_graphql_api_id": gid("Refund", 509562900 + seq),
                "refund_line_items": [],
                "transactions": [{"kind": "refund", "status": "success",
                                  "amount": order["total_price"],
                                  "currency": order["currency"]}]}
    raise ValueError("cannot build a body for topic %r" % topic)


def sign(secret, raw):
    mac = hmac.new(secret.encode(), raw, hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def send_webhook(fake, spec, seq):
    url = spec.get("url") or ""
    host = urllib.parse.urlsplit(url).hostname
    if not url.startswith(("http://", "https://")) or \
            host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("webhooks go to loopback URLs only")
    body = spec.get("body")
    if body is None:
        body = build_body(fake, spec, seq)
    raw = body.encode() if isinstance(body, str) else \
        json.dumps(body, separators=(",", ":")).encode()
    with fake.lock:
        cfg = dict(fake.cfg)
        now = fake.now_iso()
    secret = spec.get("secret") or cfg["webhook_secret"]
    mac = sign(secret, raw)
    if spec.get("bad_hmac"):
        mac = sign(secret + "-wrong", raw)
    wid = spec.get("webhook_id") or \
        "00000000-0000-4000-8000-%012d" % seq
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": spec.get("topic", "orders/create"),
        "X-Shopify-Hmac-Sha256": mac,
        "X-Shopify-Shop-Domain": spec.get("shop") or cfg["shop"],
        "X-Shopify-API-Version": cfg["webhook_api_version"],
        "X-Shopify-Webhook-Id": wid,
        "X-Shopify-Event-Id": "00000000-0000-4000-9000-%012d" % seq,
        "X-Shopify-Triggered-At": now,
    }
    times = spec.get("duplicate") or 0
    times = 1 + (1 if times is True else int(times))
    deliveries = []
    for _ in range(times):
        req = urllib.request.Request(url, data=raw, headers=headers,
                                     method="POST")
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                deliveries.append({"status": r.status,
                                   "body": r.read().decode("utf-8",
                                                           "replace")})
        except urllib.error.HTTPError as e:
            deliveries.append({"status": e.code,
                               "body": e.read().decode("utf-8", "replace")})
        except (urllib.error.URLError, OSError) as e:
            deliveries.append({"status": 0, "error": str(e)})
    out = {"webhook_id": wid, "hmac": mac, "topic": headers["X-Shopify-Topic"],
           "body": raw.decode("utf-8", "replace"), "deliveries": deliveries}
    with fake.lock:
        fake.webhooks.append(out)
    return out


def self_test():
    """The signer against the vectors of external-apis.md 2.6."""
    assert sign("hush", b'{"id":1,"title":"T-Shirt"}') == \
        "OWWnLO1BDOT8iD5FTumnKMKmYTXRkY+TDlDEtkWOnUs="
    fixture = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "..", "fixtures", "shopify")
    with open(os.path.join(fixture, "fulfillments_create.json"), "rb") as f:
        body = f.read()
    assert sign("test_app_client_secret_0123456789", body) == \
        "XDyCtPjKYgZs91pxvlBV+Ox3tSASAYHK974S0yCLDcw="
    cat = make_catalog(3)
    assert [p["id"] for p in cat] == [gid("Product", n) for n in (1, 2, 3)]
    assert uncursor(cursor(42)) == 42 and uncursor("nope") is None
    assert root_field("query Q($a: Int) { products(first: 1) { x } }") == \
        "products"
    print("fake_shopify: self-test ok")


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
    ap.add_argument("--token", default="shpat_fake_0123456789abcdef")
    ap.add_argument("--shop", default="pivota-fake.myshopify.com")
    ap.add_argument("--count", type=int, default=7)
    ap.add_argument("--secret", default="fake_app_client_secret")
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
