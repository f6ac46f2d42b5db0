// tests/node/mcp_client.mjs: pivota-mcp driven by the official MCP
// TypeScript SDK client over stdio, against the running server.
//
// Environment: PIVOTA_MCP_BIN (the built bin/pivota-mcp),
// PIVOTA_API_URL, PIVOTA_API_KEY, PIVOTA_TEST_MERCHANT_ID,
// PIVOTA_TEST_QUERY (default "mug").  Checks the handshake and tool
// list, then search -> get -> create (replayed with its idempotency
// key) -> declined pay -> pay -> list -> track -> refund, every step
// required.  Also version negotiation and
// JSON-RPC errors on a raw pipe.  Exits 1 on the first failure.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createInterface } from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { LATEST_PROTOCOL_VERSION } from "@modelcontextprotocol/sdk/types.js";

const BIN = process.env.PIVOTA_MCP_BIN;
const MERCHANT = process.env.PIVOTA_TEST_MERCHANT_ID;
const QUERY = process.env.PIVOTA_TEST_QUERY || "mug";
for (const v of ["PIVOTA_MCP_BIN", "PIVOTA_API_URL", "PIVOTA_API_KEY", "PIVOTA_TEST_MERCHANT_ID"])
  assert.ok(process.env[v], `${v} is not set`);
const env = { PATH: process.env.PATH, PIVOTA_API_URL: process.env.PIVOTA_API_URL,
  PIVOTA_API_KEY: process.env.PIVOTA_API_KEY };

const transport = new StdioClientTransport({ command: BIN, args: [], env, stderr: "inherit" });
const client = new Client({ name: "pivota-make-check", version: "1.0.0" });
await client.connect(transport);
assert.equal(client.getServerVersion().name, "pivota-mcp");
assert.ok(client.getServerCapabilities().tools, "no tools capability");

const { tools } = await client.listTools();
const names = tools.map((t) => t.name).sort();
assert.deepEqual(names, ["create_order", "get_product", "list_orders", "pay_order",
  "refund_order", "search_products", "track_order"]);
for (const t of tools) {
  assert.equal(t.inputSchema.type, "object", `${t.name} inputSchema`);
  assert.ok(t.description.length > 20, `${t.name} description`);
}

async function ok(name, args) {
  const r = await client.callTool({ name, arguments: args });
  assert.notEqual(r.isError, true, `${name}: ${r.content?.[0]?.text}`);
  const text = JSON.parse(r.content[0].text);
  assert.deepEqual(r.structuredContent, text, `${name}: structuredContent differs from text`);
  assert.equal(text.status, "success");
  return text;
}
async function toolError(name, args) {
  const r = await client.callTool({ name, arguments: args });
  assert.equal(r.isError, true, `${name} should fail: ${r.content?.[0]?.text}`);
  return r.content[0].text;
}

const found = await ok("search_products", { query: QUERY, merchant_id: MERCHANT, in_stock_only: true, limit: 20 });
// in_stock_only keeps a product when any variant has stock: name one.
const prod = found.products.find((p) => p.variants.some((v) => v.in_stock && v.inventory_quantity >= 5));
assert.ok(prod, `no ${QUERY} in stock at ${MERCHANT}`);
const variant = prod.variants.find((v) => v.in_stock && v.inventory_quantity >= 5);
assert.equal((await ok("get_product", { merchant_id: MERCHANT, product_id: prod.id })).product.id, prod.id);

const orderArgs = {
  merchant_id: MERCHANT, customer_email: "mcp@agents.example",
  items: [{ product_id: prod.id, variant_id: variant.id, quantity: 1 }],
  shipping_address: { name: "Mo Cee", address_line1: "2 Side St", city: "Shelbyville", postal_code: "54321", country: "US" },
  idempotency_key: "mcp-test-" + randomUUID(),
};
const order = await ok("create_order", orderArgs);
assert.match(order.order_id, /^ORD_[0-9A-F]{16}$/);
assert.equal(order.order_status, "pending");
assert.equal((await ok("create_order", orderArgs)).order_id, order.order_id, "replay made a second order");

let text = await toolError("pay_order", { order_id: order.order_id, payment_token: "pm_card_chargeDeclined" });
assert.match(text, /decline_code generic_decline/);
assert.match(text, /HTTP 402/);
const pay = await ok("pay_order", { order_id: order.order_id, payment_token: "pm_card_visa" });
assert.equal(pay.payment_status, "succeeded");
assert.equal(pay.amount, order.total);
text = await toolError("pay_order", { order_id: order.order_id, payment_token: "pm_card_mastercard" });
assert.match(text, /order_already_paid/);

const listed = await ok("list_orders", { merchant_id: MERCHANT, limit: 100 });
const mine = listed.orders.find((o) => o.order_id === order.order_id);
assert.ok(mine, "the order is not listed");
assert.equal(mine.status, "paid");
assert.equal(listed.orders.filter((o) => o.order_id === order.order_id).length, 1);

const trackRes = await client.callTool({ name: "track_order", arguments: { order_id: order.order_id } });
assert.notEqual(trackRes.isError, true, trackRes.content[0].text);
assert.equal(trackRes.structuredContent.tracking.order_id, order.order_id);
const refundRes = await client.callTool({ name: "refund_order", arguments: { order_id: order.order_id, reason: "changed mind" } });
assert.notEqual(refundRes.isError, true, refundRes.content[0].text);
assert.equal(refundRes.structuredContent.new_order_status, "refunded");
assert.equal(refundRes.structuredContent.refunded_total, order.total);

// Tool errors carry the reason; protocol errors for unknown tools.
assert.match(await toolError("create_order", { merchant_id: MERCHANT }), /"customer_email" is required/);
assert.match(await toolError("search_products", { query: 5 }), /"query" must be a string/);
assert.match(await toolError("search_products", { colour: "red" }), /does not take an argument "colour"/);
assert.match(await toolError("get_product", { merchant_id: MERCHANT, product_id: "prod_0000000000000000" }),
  /HTTP 404, product_not_found|HTTP 404, not_found/);
await assert.rejects(client.callTool({ name: "buy_everything", arguments: {} }), /Unknown tool/);
await client.close();

// A wrong key: every call is a tool error naming the 401.
const bad = new Client({ name: "pivota-make-check", version: "1.0.0" });
await bad.connect(new StdioClientTransport({ command: BIN, env: { ...env, PIVOTA_API_KEY: "ak_live_" + "0".repeat(64) }, stderr: "inherit" }));
assert.match(await (async () => (await bad.callTool({ name: "list_orders", arguments: {} })).content[0].text)(), /HTTP 401/);
await bad.close();

// Raw JSON-RPC: version negotiation, ping, parse and method errors.
const child = spawn(BIN, [], { env, stdio: ["pipe", "pipe", "inherit"] });
const lines = createInterface({ input: child.stdout });
const queue = [];
let waiting = null;
lines.on("line", (l) => (waiting ? (waiting(l), (waiting = null)) : queue.push(l)));
const next = () => new Promise((res) => (queue.length ? res(queue.shift()) : (waiting = res)));
async function rpc(msg) {
  child.stdin.write((typeof msg === "string" ? msg : JSON.stringify(msg)) + "\n");
  return JSON.parse(await next());
}
const init = (v, id) => ({ jsonrpc: "2.0", id, method: "initialize",
  params: { protocolVersion: v, capabilities: {}, clientInfo: { name: "raw", version: "0" } } });
assert.equal((await rpc(init("2024-11-05", 1))).result.protocolVersion, "2024-11-05");
assert.equal((await rpc(init("2025-03-26", 2))).result.protocolVersion, "2025-03-26");
assert.equal((await rpc(init("1999-01-01", 3))).result.protocolVersion, "2025-11-25");
assert.equal((await rpc(init(LATEST_PROTOCOL_VERSION, 4))).result.protocolVersion, LATEST_PROTOCOL_VERSION);
child.stdin.write(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) + "\n");
assert.deepEqual(await rpc({ jsonrpc: "2.0", id: "p", method: "ping" }), { jsonrpc: "2.0", id: "p", result: {} });
assert.equal((await rpc("{not json")).error.code, -32700);
assert.equal((await rpc({ jsonrpc: "2.0", id: 9, method: "resources/list" })).error.code, -32601);
assert.equal((await rpc({ jsonrpc: "2.0", id: 10, method: "tools/call", params: { name: "nope" } })).error.code, -32602);
const old = await rpc({ jsonrpc: "2.0", id: 11, method: "tools/call", params: { name: "list_orders", arguments: { limit: 1 } } });
assert.equal(old.result.isError, false);
child.stdin.end();
const code = await new Promise((res) => child.on("exit", res));
assert.equal(code, 0, "pivota-mcp did not exit 0 at end of input");
console.log(`mcp: ${tools.length} tools; search, get, create (replayed), declined pay, pay, list, track, refund and the error paths pass`);
