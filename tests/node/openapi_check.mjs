// tests/node/openapi_check.mjs SPEC: docs/openapi.yaml against the
// running server.
//
// 1. Lints the document: swagger-parser validates it against the
//    OpenAPI 3.1 schema and resolves every $ref; then our own rules
//    (every operation has an operationId, summary and tags; every
//    error response is the Error shape; every 200 of an /agent/v1
//    operation declares the rate-limit headers).
// 2. Records a flow through the server at $PIVOTA_API_URL as the agent
//    of $PIVOTA_API_KEY buying from $PIVOTA_TEST_MERCHANT_ID: every
//    endpoint that exists, successes and errors (401, 400, 402, 404,
//    409, 422, 429 from a throwaway agent made with pivotactl,
//    Idempotent-Replayed), written to $PIVOTA_RECORD_FILE as JSON lines.
// 3. Validates each recorded response against the spec's response for
//    its path, method and status: the body with ajv (JSON Schema
//    2020-12, formats checked) and the required headers.  A status
//    the spec does not list is a failure.
//
// Endpoints that answer 404 "No such endpoint." (being built on other
// branches) are reported and not validated.  Exits 1 on any failure.
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import SwaggerParser from "@apidevtools/swagger-parser";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const specPath = process.argv[2] || "docs/openapi.yaml";
const BASE = process.env.PIVOTA_API_URL;
const KEY = process.env.PIVOTA_API_KEY;
const MERCHANT = process.env.PIVOTA_TEST_MERCHANT_ID;
const QUERY = process.env.PIVOTA_TEST_QUERY || "mug";
const failures = [];
const fail = (m) => { failures.push(m); console.error("openapi: FAIL " + m); };

// 1. Lint.
const raw = await SwaggerParser.parse(specPath);
try {
  await SwaggerParser.validate(structuredClone(raw));
} catch (e) {
  console.error(e.message);
  process.exit(1);
}
const api = await SwaggerParser.dereference(structuredClone(raw));
const METHODS = ["get", "post", "put", "patch", "delete"];
const ops = [];
for (const [p, item] of Object.entries(api.paths)) {
  for (const m of METHODS) {
    if (!item[m]) continue;
    const op = item[m];
    const rawOp = raw.paths[p][m];
    ops.push({ path: p, method: m, op });
    if (!op.operationId || !op.summary || !op.tags?.length)
      fail(`lint: ${m.toUpperCase()} ${p} needs operationId, summary and tags`);
    for (const name of [...p.matchAll(/\{([^}]+)\}/g)].map((x) => x[1]))
      if (!(op.parameters || []).some((q) => q.in === "path" && q.name === name))
        fail(`lint: ${m.toUpperCase()} ${p} does not declare path parameter ${name}`);
    for (const [st, r] of Object.entries(rawOp.responses)) {
      const code = Number(st);
      if (code >= 400 && p !== "/health" && !(r.$ref || "").startsWith("#/components/responses/"))
        fail(`lint: ${m.toUpperCase()} ${p} ${st} is not a shared error response`);
      if (code === 200 && p.startsWith("/agent/v1/")) {
        const h = op.responses[st].headers || {};
        for (const n of ["X-Request-Id", "X-RateLimit-Limit", "X-Quota-Remaining"])
          if (!h[n]) fail(`lint: ${m.toUpperCase()} ${p} 200 lacks ${n}`);
      }
    }
    if (p.startsWith("/agent/v1/") && !op.responses["401"])
      fail(`lint: ${m.toUpperCase()} ${p} lacks 401`);
  }
}
for (const [name, r] of Object.entries(raw.components.responses))
  if (r.content["application/json"].schema.$ref !== "#/components/schemas/Error" &&
      r.content["application/json"].schema.$ref !== "#/components/schemas/PaymentDeclined")
    fail(`lint: response ${name} is not the Error shape`);
console.log(`openapi: ${specPath} is valid OpenAPI ${api.openapi}, ${ops.length} operations`);

if (!BASE || !KEY || !MERCHANT) {
  console.error("openapi: PIVOTA_API_URL, PIVOTA_API_KEY and PIVOTA_TEST_MERCHANT_ID are needed");
  process.exit(1);
}

// 2. Record.
const recorded = [];
async function call(method, path, { body, key = KEY, headers = {}, raw: rawBody } = {}) {
  const h = { Accept: "application/json", ...headers };
  if (key) h["X-API-Key"] = key;
  let data;
  if (rawBody !== undefined) data = rawBody;
  else if (body !== undefined || method === "POST") data = JSON.stringify(body ?? {});
  if (data !== undefined) h["Content-Type"] ??= "application/json";
  if (method === "POST" && !h["Idempotency-Key"]) h["Idempotency-Key"] = randomUUID();
  const r = await fetch(BASE + path, { method, headers: h, body: data });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* validated below */ }
  const rec = { method, path, status: r.status, headers: Object.fromEntries(r.headers), body: json, text };
  recorded.push(rec);
  return rec;
}
function expect(rec, status) {
  if (rec.status !== status)
    throw new Error(`${rec.method} ${rec.path}: ${rec.status}, want ${status}: ${rec.text}`);
  return rec.body;
}
const missing = (rec) => rec.status === 404 && rec.body?.detail === "No such endpoint.";

const ADDRESS = { name: "Ada Agent", address_line1: "1 Main St", city: "Springfield", postal_code: "12345", country: "US" };
const order = (pid, qty = 1) => ({ merchant_id: MERCHANT, customer_email: "ada@agents.example",
  items: [{ product_id: pid, variant_id: vid, quantity: qty }], shipping_address: ADDRESS });

expect(await call("GET", "/health", { key: null }), 200);
expect(await call("GET", "/agent/v1/merchants?limit=5"), 200);
const found = expect(await call("GET", `/agent/v1/products/search?q=${QUERY}&merchant_id=${MERCHANT}&in_stock=True&limit=20`), 200);
// in_stock keeps a product when any variant has stock; an item without
// variant_id buys the default variant, so name one that has stock.
let pid, vid;
for (const p of found.products) {
  const v = p.variants.find((x) => x.in_stock && x.inventory_quantity >= 10);
  if (v) { pid = p.id; vid = v.id; break; }
}
if (!pid) throw new Error(`no product for ${QUERY} with stock at ${MERCHANT}`);
expect(await call("GET", `/agent/v1/products/search?query=${QUERY}`), 200);
expect(await call("GET", `/agent/v1/products/${MERCHANT}/${pid}`), 200);
expect(await call("GET", `/agent/v1/products/${MERCHANT}/prod_0000000000000000`), 404);
expect(await call("GET", "/agent/v1/products/search?limit=101"), 400);
expect(await call("POST", "/agent/v1/cart/validate", { body: { merchant_id: MERCHANT, items: [{ product_id: pid, variant_id: vid, quantity: 1 }], shipping_country: "US" } }), 200);
expect(await call("POST", "/agent/v1/cart/validate", { body: { merchant_id: MERCHANT, items: [{ product_id: pid, quantity: 1 }], shipping_country: "US", colour: "red" } }), 400);

const idem = randomUUID();
const created = expect(await call("POST", "/agent/v1/orders/create", { body: order(pid), headers: { "Idempotency-Key": idem } }), 200);
const replay = await call("POST", "/agent/v1/orders/create", { body: order(pid), headers: { "Idempotency-Key": idem } });
expect(replay, 200);
if (replay.headers["idempotent-replayed"] !== "true") fail("replayed create lacks Idempotent-Replayed: true");
expect(await call("POST", "/agent/v1/orders/create", { body: order(pid, 2), headers: { "Idempotency-Key": idem } }), 422);
const oid = created.order_id;
const declined = expect(await call("POST", "/agent/v1/payments", { body: { order_id: oid, payment_method: { type: "card", token: "pm_card_chargeDeclined" } } }), 402);
if (!declined.decline_code) fail("402 without decline_code");
const paid = expect(await call("POST", "/agent/v1/payments", { body: { order_id: oid, payment_method: { type: "card", token: "pm_card_visa" } } }), 200);
// Another card for a paid order: 409 (the same card again is a retry).
expect(await call("POST", "/agent/v1/payments", { body: { order_id: oid, payment_method: { type: "card", token: "pm_card_mastercard" } } }), 409);
expect(await call("GET", `/agent/v1/payments/${paid.payment_id}`), 200);
expect(await call("GET", `/agent/v1/orders/${oid}`), 200);
expect(await call("GET", "/agent/v1/orders/ORD_0000000000000000"), 404);
expect(await call("GET", `/agent/v1/orders?merchant_id=${MERCHANT}&limit=5`), 200);
expect(await call("GET", "/agent/v1/orders?colour=red"), 400);
expect(await call("POST", `/agent/v1/orders/${oid}/cancel`, { body: { reason: "test" } }), 409);

const second = expect(await call("POST", "/agent/v1/orders", { body: order(pid) }), 200);
const action = expect(await call("POST", "/agent/v1/payments", { body: { order_id: second.order_id, payment_method: { type: "card", token: "pm_card_authenticationRequired" } } }), 200);
if (action.payment_status !== "requires_action" || !action.next_action) fail("3-D Secure payment without next_action");
expect(await call("POST", `/agent/v1/orders/${second.order_id}/cancel`, {}), 409);
const third = expect(await call("POST", "/agent/v1/orders/create", { body: order(pid) }), 200);
expect(await call("POST", `/agent/v1/orders/${third.order_id}/cancel`, {}), 200);

expect(await call("GET", "/agent/v1/analytics/summary?days=3"), 200);
expect(await call("GET", "/agent/v1/rate-limits"), 200);
expect(await call("GET", "/agent/v1/rate-limits", { key: null, headers: { Authorization: `Bearer ${KEY}` } }), 200);
expect(await call("GET", "/agent/v1/orders", { key: null }), 401);
expect(await call("GET", "/agent/v1/orders", { key: "ak_live_" + "0".repeat(64) }), 401);
const wh = expect(await call("POST", "/agent/v1/webhooks", { body: { url: "https://agent.example/hook", events: ["order.paid"] } }), 200);
expect(await call("GET", "/agent/v1/webhooks"), 200);
expect(await call("DELETE", `/agent/v1/webhooks/${wh.webhook.id}`), 200);
expect(await call("DELETE", `/agent/v1/webhooks/${wh.webhook.id}`), 404);
const hook = await call("POST", `/webhooks/stripe/${MERCHANT}`, { key: null,
  raw: JSON.stringify({ id: "evt_forged", type: "payment_intent.succeeded", data: { object: {} } }),
  headers: { "Stripe-Signature": `t=${Math.floor(Date.now() / 1000)},v1=${"0".repeat(64)}` } });
if (hook.status < 400 || hook.status > 401) fail(`forged Stripe webhook answered ${hook.status}`);

// Endpoints other branches are building: validated once they exist.
const later = [];
for (const [m, p, body] of [
  ["GET", `/agent/v1/fulfillment/track/${oid}`],
  ["GET", `/agent/v1/orders/${oid}/track`],
  ["GET", "/agent/v1/fulfillment/orders/in-transit?limit=5"],
  ["POST", `/agent/v1/orders/${oid}/refund`, { amount: "1.00", reason: "damaged" }],
  ["POST", `/agent/v1/orders/${oid}/refund`, {}],
  ["POST", `/agent/v1/orders/${oid}/refund`, {}],
]) {
  const rec = await call(m, p, { body });
  if (missing(rec)) {
    recorded.pop();
    later.push(`${m} ${p.replace(oid, "{order_id}")}`);
  }
}
// The feed shows an event a moment after its commit: wait for some.
for (let i = 0; i < 50; i++) {
  const rec = await call("GET", "/agent/v1/events?limit=5");
  if (missing(rec)) { recorded.pop(); later.push("GET /agent/v1/events"); break; }
  if (rec.status !== 200 || rec.body?.events?.length > 0) break;
  recorded.pop();
  await new Promise((r) => setTimeout(r, 100));
}
for (const l of [...new Set(later)]) console.log(`openapi: not on this server, not validated: ${l}`);

// 429: a throwaway agent allowed two requests a minute.
const ctl = spawnSync(`${process.env.PV_BUILD_DIR}/bin/pivotactl`,
  ["agent", "create", "--name", "openapi 429", "--per-minute", "2", "--merchants", MERCHANT, "--json"],
  { encoding: "utf8" });
if (ctl.status !== 0) {
  fail(`pivotactl agent create: ${ctl.stderr}`);
} else {
  const slow = JSON.parse(ctl.stdout).api_key;
  // Fixed one-minute windows: within six calls one is refused, even
  // if a window ends in between.
  let last;
  for (let i = 0; i < 6 && last?.status !== 429; i++)
    last = await call("GET", "/agent/v1/rate-limits", { key: slow });
  expect(last, 429);
  if (!last.headers["retry-after"]) fail("429 without Retry-After");
}
if (process.env.PIVOTA_RECORD_FILE)
  writeFileSync(process.env.PIVOTA_RECORD_FILE, recorded.map((r) => JSON.stringify(r)).join("\n") + "\n");

// 3. Validate.
const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
addFormats(ajv);
ajv.addKeyword("example");
const matchers = ops.map(({ path, method, op }) => ({
  path, method, op, params: (path.match(/\{/g) || []).length,
  re: new RegExp("^" + path.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\\?\{[^}]+\\?\}/g, "[^/]+") + "$"),
})).sort((a, b) => a.params - b.params);
const cache = new Map();
function validator(key, schema) {
  if (!cache.has(key)) cache.set(key, ajv.compile(schema));
  return cache.get(key);
}
const covered = new Set();
for (const rec of recorded) {
  const where = `${rec.method} ${rec.path} ${rec.status}`;
  const pathOnly = rec.path.split("?")[0];
  const m = matchers.find((x) => x.method === rec.method.toLowerCase() && x.re.test(pathOnly));
  if (!m) { fail(`${where}: no operation in the spec`); continue; }
  const resp = m.op.responses[String(rec.status)];
  if (!resp) { fail(`${where}: status not in the spec for ${m.op.operationId}`); continue; }
  covered.add(`${m.op.operationId} ${rec.status}`);
  for (const [name, h] of Object.entries(resp.headers || {})) {
    const v = rec.headers[name.toLowerCase()];
    if (v === undefined) {
      if (h.required) fail(`${where}: missing header ${name}`);
      continue;
    }
    const s = h.schema || {};
    const value = s.type === "integer" ? (/^-?\d+$/.test(v) ? Number(v) : v) : v;
    const check = validator(`h:${name}:${JSON.stringify(s)}`, s);
    if (!check(value)) fail(`${where}: header ${name}: ${v} ${ajv.errorsText(check.errors)}`);
  }
  const media = resp.content?.["application/json"];
  if (!media) continue;
  if (rec.body === null) { fail(`${where}: body is not JSON: ${rec.text.slice(0, 200)}`); continue; }
  const check = validator(`b:${m.op.operationId}:${rec.status}`, media.schema);
  if (!check(rec.body))
    fail(`${where}: ${ajv.errorsText(check.errors, { separator: "; " })}\n  body: ${rec.text.slice(0, 400)}`);
}
console.log(`openapi: ${recorded.length} recorded responses, ${covered.size} operation/status pairs: ${[...covered].sort().join(", ")}`);
if (failures.length) {
  console.error(`openapi: ${failures.length} failure(s)`);
  process.exit(1);
}
console.log("openapi: every recorded response validates");
