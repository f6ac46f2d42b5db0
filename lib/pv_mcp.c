/*
 * The Model Context Protocol server for agents (issue 10).  An MCP
 * client (Claude Desktop, an agent framework) starts pivota-mcp and
 * talks JSON-RPC 2.0 to it over stdin and stdout, one message per line
 * (the MCP stdio transport).  The server answers initialize (with
 * protocol version negotiation), ping, tools/list and tools/call; every
 * tool is one call of the Pivota HTTP API made through pv_upstream with
 * the agent's key, so the key never passes through the model.
 *
 * Tool results carry the API's JSON answer as text (and as
 * structuredContent from protocol 2025-06-18 on).  An API error becomes
 * a tool error (isError) whose text is the API's `detail` plus its
 * code, param and request id, so the model can read why and correct
 * itself; only a malformed message, an unknown method or an unknown
 * tool is a JSON-RPC error.
 *
 * Every POST carries an Idempotency-Key (the caller's
 * `idempotency_key` argument, else a fresh random one) that
 * pv_upstream reuses on each retry, so a retried create_order or
 * pay_order never creates or charges twice.  Retries follow
 * pv_upstream (connection failures, 429 with Retry-After, 5xx) except
 * that a 409 is retried only when it is idempotency_in_flight.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "pv_arena.h"
#include "pv_buf.h"
#include "pv_crypto.h"
#include "pv_err.h"
#include "pv_json.h"
#include "pv_log.h"
#include "pv_mcp.h"
#include "pv_upstream.h"

#define MCP_VERSION     "1.0.0"
#define MCP_ARENA_CAP   (16u * 1024u * 1024u) /* per message */
#define MCP_LINE_MAX    (4u * 1024u * 1024u)  /* one JSON-RPC message */
#define MCP_URL_MAX     8192u
#define MCP_DEFAULT_URL "http://127.0.0.1:8080"

/* JSON-RPC 2.0 error codes. */
#define RPC_PARSE_ERROR     (-32700)
#define RPC_INVALID_REQUEST (-32600)
#define RPC_NO_METHOD       (-32601)
#define RPC_INVALID_PARAMS  (-32602)
#define RPC_INTERNAL        (-32603)

/* Protocol versions we speak, newest first. */
static const char *const versions[] = { "2025-11-25", "2025-06-18",
	"2025-03-26", "2024-11-05", NULL };

/* The process's state. */
struct mcp {
	struct pv_upstream *up;    /* the one libcurl handle */
	struct pv_arena *arena;    /* per message, reset after each */
	struct pv_arena *keep;     /* lives as long as the process */
	struct json_object *tools; /* tools/list's array, in keep */
	const char *base;          /* API base URL, no trailing slash */
	const char *key;           /* the agent's API key */
	const char *version;       /* negotiated protocol version */
};

struct tool;

/* Adjusts a POST body built from the arguments; may fail with err. */
typedef int (*tool_fix_fn)(struct mcp *m, struct json_object *args,
    struct json_object *body, struct pv_err *err);

/*
 * One tool: its MCP description and the HTTP call it makes.  Arguments
 * named in path become path segments ({name} in path), those in query
 * become query parameters, those in body are copied into the JSON body
 * of a POST.  idempotency_key is always accepted by POST tools.
 */
struct tool {
	const char *name;               /* MCP tool name */
	const char *title;              /* for people */
	const char *description;        /* for the model */
	const char *schema;             /* JSON Schema of the arguments */
	enum pv_upstream_method method; /* GET or POST */
	const char *path;               /* with {arg} placeholders */
	const char *const *query;       /* arguments sent in the query */
	const char *const *body;        /* arguments copied to the body */
	tool_fix_fn fix;                /* body adjustment, or NULL */
};

static const char *const search_q[] = { "query", "merchant_id", "category",
	"min_price", "max_price", "in_stock_only", "limit", "offset", "cursor",
	NULL };
static const char *const list_q[] = { "merchant_id", "status", "limit",
	"offset", "cursor", NULL };
static const char *const order_b[] = { "merchant_id", "customer_email", "items",
	"shipping_address", "currency", "metadata", "agent_session_id",
	"preferred_psp", NULL };
static const char *const pay_b[] = { "order_id", "return_url", NULL };
static const char *const refund_b[] = { "amount", "reason", "items", NULL };
static const char *const none[] = { NULL };

static int fix_pay(struct mcp *m, struct json_object *args,
    struct json_object *body, struct pv_err *err);

#define ID_ARG(n, d) \
	"\"" n "\": {\"type\": \"string\", \"description\": \"" d "\"}"
#define IDEM_ARG \
	"\"idempotency_key\": {\"type\": \"string\", \"maxLength\": 255," \
	" \"description\": \"Reuse the same key to retry this call safely;" \
	" a fresh one is made when absent.\"}"
#define ITEMS_ARG(d) \
	"\"items\": {\"type\": \"array\", \"minItems\": 1, \"description\": " \
	"\"" d "\", \"items\": {\"type\": \"object\", \"required\":" \
	" [\"product_id\", \"quantity\"], \"additionalProperties\": false," \
	" \"properties\": {\"product_id\": {\"type\": \"string\"}," \
	" \"variant_id\": {\"type\": \"string\"}, \"quantity\": {\"type\":" \
	" \"integer\", \"minimum\": 1}}}}"

static const struct tool tools[] = {
	{ "search_products", "Search products",
	    "Search the catalogs of every merchant this agent may buy from"
	    " (or one merchant). Full-text, typo-tolerant, ranked. Prices are"
	    " decimal strings in the product's currency. Use a product's id"
	    " (and variant_id) to create an order.",
	    "{\"type\": \"object\", \"additionalProperties\": false,"
	    " \"properties\": {"
	    "\"query\": {\"type\": \"string\", \"maxLength\": 200,"
	    " \"description\": \"What to look for; empty browses.\"},"
	    " " ID_ARG("merchant_id",
	        "Only this merchant (mer_...).") ","
	                                         " \"category\": {\"type\": "
	                                         "\"string\"},"
	                                         " \"min_price\": {\"type\": "
	                                         "\"string\", \"pattern\":"
	                                         " \"^[0-9]+(\\\\.[0-9]+)?$\", "
	                                         "\"description\": \"Major "
	                                         "units, e.g."
	                                         " 25.00\"},"
	                                         " \"max_price\": {\"type\": "
	                                         "\"string\", \"pattern\":"
	                                         " \"^[0-9]+(\\\\.[0-9]+)?$\"},"
	                                         " \"in_stock_only\": "
	                                         "{\"type\": \"boolean\"},"
	                                         " \"limit\": {\"type\": "
	                                         "\"integer\", \"minimum\": 1, "
	                                         "\"maximum\": 100},"
	                                         " \"offset\": {\"type\": "
	                                         "\"integer\", \"minimum\": 0},"
	                                         " \"cursor\": {\"type\": "
	                                         "\"string\", \"description\": "
	                                         "\"next_cursor"
	                                         " of the previous page\"}}}",
	    PV_UPSTREAM_GET, "/agent/v1/products/search", search_q, none,
	    NULL },
	{ "get_product", "Get a product",
	    "One product with its variants, stock and price.",
	    "{\"type\": \"object\", \"additionalProperties\": false,"
	    " \"required\": [\"merchant_id\", \"product_id\"], \"properties\": "
	    "{"
	    " " ID_ARG("merchant_id",
	        "The merchant (mer_...).") ","
	                                   " " ID_ARG("product_id",
	                                       "The product (prod_...).") "}}",
	    PV_UPSTREAM_GET, "/agent/v1/products/{merchant_id}/{product_id}",
	    none, none, NULL },
	{ "create_order", "Create an order",
	    "Create a pending order at one merchant. Pivota prices it from the"
	    " catalog (shipping and tax included) and reserves the stock; pay"
	    " it with pay_order. Answers order_id and the total.",
	    "{\"type\": \"object\", \"additionalProperties\": false,"
	    " \"required\": [\"merchant_id\", \"customer_email\", \"items\","
	    " \"shipping_address\"], \"properties\": {"
	    " " ID_ARG("merchant_id",
	        "The merchant (mer_...).") ","
	                                   " \"customer_email\": {\"type\": "
	                                   "\"string\", \"format\": \"email\"},"
	                                   " " ITEMS_ARG(
	                                       "What to buy.") ","
	                                                       " \"shipping_"
	                                                       "address\": "
	                                                       "{\"type\": "
	                                                       "\"object\", "
	                                                       "\"required\":"
	                                                       " [\"name\", "
	                                                       "\"address_"
	                                                       "line1\", "
	                                                       "\"city\", "
	                                                       "\"postal_"
	                                                       "code\","
	                                                       " \"country\"], "
	                                                       "\"additionalPro"
	                                                       "perties\": "
	                                                       "false, "
	                                                       "\"properties\":"
	                                                       " {"
	                                                       "\"name\": "
	                                                       "{\"type\": "
	                                                       "\"string\"}, "
	                                                       "\"address_"
	                                                       "line1\": "
	                                                       "{\"type\":"
	                                                       " \"string\"}, "
	                                                       "\"address_"
	                                                       "line2\": "
	                                                       "{\"type\": "
	                                                       "\"string\"},"
	                                                       " \"city\": "
	                                                       "{\"type\": "
	                                                       "\"string\"}, "
	                                                       "\"state\": "
	                                                       "{\"type\": "
	                                                       "\"string\"},"
	                                                       " \"postal_"
	                                                       "code\": "
	                                                       "{\"type\": "
	                                                       "\"string\"}, "
	                                                       "\"country\": "
	                                                       "{\"type\":"
	                                                       " \"string\", "
	                                                       "\"pattern\": "
	                                                       "\"^[A-Z]{2}$\","
	                                                       " \"description"
	                                                       "\": \"ISO"
	                                                       " 3166-1 "
	                                                       "alpha-2\"}, "
	                                                       "\"phone\": "
	                                                       "{\"type\": "
	                                                       "\"string\"}}},"
	                                                       " \"currency\": "
	                                                       "{\"type\": "
	                                                       "\"string\", "
	                                                       "\"pattern\": "
	                                                       "\"^[A-Z]{3}$\"}"
	                                                       ","
	                                                       " \"metadata\": "
	                                                       "{\"type\": "
	                                                       "\"object\"},"
	                                                       " \"agent_"
	                                                       "session_id\": "
	                                                       "{\"type\": "
	                                                       "\"string\"},"
	                                                       " \"preferred_"
	                                                       "psp\": "
	                                                       "{\"type\": "
	                                                       "\"string\", "
	                                                       "\"enum\": "
	                                                       "[\"stripe\","
	                                                       " \"adyen\", "
	                                                       "\"sandbox\"]},"
	                                                       " " IDEM_ARG
	                                                       "}}",
	    PV_UPSTREAM_POST, "/agent/v1/orders/create", none, order_b, NULL },
	{ "pay_order", "Pay an order",
	    "Pay a pending order with a payment-method token from the"
	    " customer's PSP (sandbox: pm_card_visa). A decline is an error"
	    " with a decline_code; payment_status requires_action comes with"
	    " next_action.redirect_to_url for the customer.",
	    "{\"type\": \"object\", \"additionalProperties\": false,"
	    " \"required\": [\"order_id\", \"payment_token\"], \"properties\": "
	    "{"
	    " " ID_ARG("order_id",
	        "The order (ORD_...).") ","
	                                " \"payment_token\": {\"type\": "
	                                "\"string\", \"description\": \"A PSP"
	                                " payment-method token such as "
	                                "pm_card_visa, or a delegated"
	                                " payment token.\"},"
	                                " \"return_url\": {\"type\": "
	                                "\"string\", \"format\": \"uri\"},"
	                                " " IDEM_ARG "}}",
	    PV_UPSTREAM_POST, "/agent/v1/payments", none, pay_b, fix_pay },
	{ "track_order", "Track an order",
	    "Fulfilment and delivery state of an order: carrier, tracking"
	    " number and URL, timeline.",
	    "{\"type\": \"object\", \"additionalProperties\": false,"
	    " \"required\": [\"order_id\"], \"properties\": {"
	    " " ID_ARG("order_id", "The order (ORD_...).") "}}",
	    PV_UPSTREAM_GET, "/agent/v1/fulfillment/track/{order_id}", none,
	    none, NULL },
	{ "refund_order", "Refund an order",
	    "Refund a paid order: everything left when neither amount nor"
	    " items is given, else part of it. amount is a decimal string in"
	    " the order's currency.",
	    "{\"type\": \"object\", \"additionalProperties\": false,"
	    " \"required\": [\"order_id\"], \"properties\": {"
	    " " ID_ARG("order_id",
	        "The order (ORD_...).") ","
	                                " \"amount\": {\"type\": \"string\", "
	                                "\"pattern\":"
	                                " \"^[0-9]+(\\\\.[0-9]+)?$\"},"
	                                " \"reason\": {\"type\": \"string\"},"
	                                " " ITEMS_ARG(
	                                    "Refund these items instead of an "
	                                    "amount.") ","
	                                               " " IDEM_ARG "}}",
	    PV_UPSTREAM_POST, "/agent/v1/orders/{order_id}/refund", none,
	    refund_b, NULL },
	{ "list_orders", "List orders",
	    "This agent's orders, newest first, with status, payment,"
	    " fulfilment and items.",
	    "{\"type\": \"object\", \"additionalProperties\": false,"
	    " \"properties\": {"
	    " " ID_ARG("merchant_id",
	        "Only this merchant.") ","
	                               " \"status\": {\"type\": \"string\", "
	                               "\"enum\": [\"pending\","
	                               " \"paid\", \"processing\", "
	                               "\"shipped\", \"delivered\","
	                               " \"payment_failed\", \"cancelled\", "
	                               "\"partially_refunded\","
	                               " \"refunded\"]},"
	                               " \"limit\": {\"type\": \"integer\", "
	                               "\"minimum\": 1, \"maximum\": 100},"
	                               " \"offset\": {\"type\": \"integer\", "
	                               "\"minimum\": 0},"
	                               " \"cursor\": {\"type\": \"string\"}}}",
	    PV_UPSTREAM_GET, "/agent/v1/orders", list_q, none, NULL },
};

#define NTOOLS (sizeof(tools) / sizeof(tools[0]))

/* pay_order's payment_token becomes payment_method {type, token}. */
static int
fix_pay(struct mcp *m, struct json_object *args, struct json_object *body,
    struct pv_err *err)
{
	struct json_object *pm = pv_json_new_obj(m->arena, err);
	const char *token;

	if (pv_json_str(args, "payment_token", 1, 1024, &token, err) == -1)
		return -1;
	pv_json_set_str(pm, "type", "card", err);
	pv_json_set_str(pm, "token", token, err);
	return pv_json_set(body, "payment_method", pm, err);
}

/* Writes one message as a line on stdout. */
static void
send_msg(struct mcp *m, struct json_object *msg)
{
	struct pv_err err = { 0 };
	const char *s;
	size_t len;

	if (pv_json_to_str(m->arena, msg, &s, &len, &err) == -1) {
		pv_log_msg(PV_LOG_ERROR, "cannot serialise a reply: %s",
		    err.msg);
		return;
	}
	if (fwrite(s, 1, len, stdout) != len || fputc('\n', stdout) == EOF ||
	    fflush(stdout) == EOF)
		pv_log_msg(PV_LOG_ERROR, "cannot write to stdout: %s",
		    strerror(errno));
}

/* A JSON-RPC envelope for id (borrowed; NULL is null). */
static struct json_object *
envelope(struct mcp *m, struct json_object *id, struct pv_err *err)
{
	struct json_object *o = pv_json_new_obj(m->arena, err);

	pv_json_set_str(o, "jsonrpc", "2.0", err);
	pv_json_set(o, "id", id, err);
	return o;
}

static void
send_error(struct mcp *m, struct json_object *id, int code, const char *msg)
{
	struct pv_err err = { 0 };
	struct json_object *o = envelope(m, id, &err);
	struct json_object *e = pv_json_new_obj(m->arena, &err);

	pv_json_set_int(e, "code", code, &err);
	pv_json_set_str(e, "message", msg, &err);
	pv_json_set(o, "error", e, &err);
	if (err.code == PV_OK)
		send_msg(m, o);
}

static void
send_result(struct mcp *m, struct json_object *id, struct json_object *res,
    struct pv_err *err)
{
	struct json_object *o = envelope(m, id, err);

	pv_json_set(o, "result", res, err);
	if (err->code != PV_OK) {
		send_error(m, id, RPC_INTERNAL, err->msg);
		return;
	}
	send_msg(m, o);
}

static int
at_least(const char *version, const char *than)
{
	return strcmp(version, than) >= 0; /* dates sort as strings */
}

static void
do_initialize(struct mcp *m, struct json_object *id, struct json_object *params)
{
	struct pv_err err = { 0 };
	struct json_object *res, *caps, *tl, *info, *v;
	const char *want = NULL;
	size_t i;

	if (params != NULL &&
	    json_object_object_get_ex(params, "protocolVersion", &v) &&
	    json_object_is_type(v, json_type_string))
		want = json_object_get_string(v);
	if (want == NULL) {
		send_error(m, id, RPC_INVALID_PARAMS,
		    "initialize needs params.protocolVersion");
		return;
	}
	/* The client's version if we speak it, else our newest. */
	m->version = versions[0];
	for (i = 0; versions[i] != NULL; i++)
		if (strcmp(versions[i], want) == 0)
			m->version = versions[i];
	res = pv_json_new_obj(m->arena, &err);
	caps = pv_json_new_obj(m->arena, &err);
	tl = pv_json_new_obj(m->arena, &err);
	info = pv_json_new_obj(m->arena, &err);
	pv_json_set_bool(tl, "listChanged", false, &err);
	pv_json_set(caps, "tools", tl, &err);
	pv_json_set_str(info, "name", "pivota-mcp", &err);
	pv_json_set_str(info, "title", "Pivota agent commerce", &err);
	pv_json_set_str(info, "version", MCP_VERSION, &err);
	pv_json_set_str(res, "protocolVersion", m->version, &err);
	pv_json_set(res, "capabilities", caps, &err);
	pv_json_set(res, "serverInfo", info, &err);
	pv_json_set_str(res, "instructions",
	    "Buy from Pivota merchants: search_products, then create_order"
	    " with a product id, then pay_order with a payment token. Money"
	    " is a decimal string in the order's currency.",
	    &err);
	send_result(m, id, res, &err);
}

static void
do_tools_list(struct mcp *m, struct json_object *id)
{
	struct pv_err err = { 0 };
	struct json_object *res = pv_json_new_obj(m->arena, &err);

	pv_json_set(res, "tools", m->tools, &err);
	send_result(m, id, res, &err);
}

/* A tool result: text content, structured content, isError. */
static void
send_tool_result(struct mcp *m, struct json_object *id, const char *text,
    struct json_object *structured, int is_error)
{
	struct pv_err err = { 0 };
	struct json_object *res = pv_json_new_obj(m->arena, &err);
	struct json_object *content = pv_json_new_arr(m->arena, &err);
	struct json_object *c = pv_json_new_obj(m->arena, &err);

	pv_json_set_str(c, "type", "text", &err);
	pv_json_set_str(c, "text", text, &err);
	pv_json_push(content, c, &err);
	pv_json_set(res, "content", content, &err);
	if (structured != NULL && at_least(m->version, "2025-06-18"))
		pv_json_set(res, "structuredContent", structured, &err);
	pv_json_set_bool(res, "isError", is_error != 0, &err);
	send_result(m, id, res, &err);
}

/* A tool error whose text explains what went wrong before any call. */
static void
send_tool_error(struct mcp *m, struct json_object *id, const struct pv_err *e)
{
	char text[512];

	snprintf(text, sizeof(text), "%s%s%s%s", e->msg,
	    e->field[0] != '\0' ? " (argument " : "", e->field,
	    e->field[0] != '\0' ? ")" : "");
	send_tool_result(m, id, text, NULL, 1);
}

/* Checks that every argument is known and each has its schema's type. */
static int
check_args(const struct tool *t, struct json_object *schema,
    struct json_object *args, struct pv_err *err)
{
	struct json_object *props = NULL, *req = NULL, *p, *ty;
	size_t i, n;

	json_object_object_get_ex(schema, "properties", &props);
	json_object_object_foreach (args, k, v) {
		const char *want;
		int ok;

		if (props == NULL || !json_object_object_get_ex(props, k, &p)) {
			PV_ERR(err, PV_E_INVALID, k,
			    "%s does not take an argument \"%s\"", t->name, k);
			return -1;
		}
		if (!json_object_object_get_ex(p, "type", &ty))
			continue;
		want = json_object_get_string(ty);
		if (strcmp(want, "string") == 0)
			ok = json_object_is_type(v, json_type_string);
		else if (strcmp(want, "integer") == 0)
			ok = json_object_is_type(v, json_type_int);
		else if (strcmp(want, "boolean") == 0)
			ok = json_object_is_type(v, json_type_boolean);
		else if (strcmp(want, "array") == 0)
			ok = json_object_is_type(v, json_type_array);
		else
			ok = json_object_is_type(v, json_type_object);
		if (!ok) {
			PV_ERR(err, PV_E_INVALID, k, "\"%s\" must be a%s %s", k,
			    want[0] == 'a' || want[0] == 'i' || want[0] == 'o' ?
			        "n" :
			        "",
			    want);
			return -1;
		}
	}
	if (!json_object_object_get_ex(schema, "required", &req))
		return 0;
	n = json_object_array_length(req);
	for (i = 0; i < n; i++) {
		const char *rk =
		    json_object_get_string(json_object_array_get_idx(req, i));

		if (!json_object_object_get_ex(args, rk, &p) ||
		    json_object_is_type(p, json_type_null)) {
			PV_ERR(err, PV_E_INVALID, rk, "\"%s\" is required", rk);
			return -1;
		}
	}
	return 0;
}

/* Appends the path with each {arg} replaced by its encoded argument. */
static int
build_path(struct pv_buf *b, const char *path, struct json_object *args,
    struct pv_err *err)
{
	const char *p = path, *open, *close;
	char name[64];
	struct json_object *v;

	while ((open = strchr(p, '{')) != NULL) {
		close = strchr(open, '}');
		if (close == NULL || (size_t)(close - open) >= sizeof(name)) {
			PV_ERR(err, PV_E_INTERNAL, NULL, "bad path %s", path);
			return -1;
		}
		pv_buf_append(b, p, (size_t)(open - p));
		memcpy(name, open + 1, (size_t)(close - open - 1));
		name[close - open - 1] = '\0';
		if (!json_object_object_get_ex(args, name, &v) ||
		    !json_object_is_type(v, json_type_string) ||
		    json_object_get_string_len(v) == 0) {
			PV_ERR(err, PV_E_INVALID, name,
			    "\"%s\" must be a non-empty string", name);
			return -1;
		}
		pv_buf_urlenc(b, json_object_get_string(v),
		    (size_t)json_object_get_string_len(v));
		p = close + 1;
	}
	pv_buf_puts(b, p);
	return 0;
}

/* Appends ?k=v&... for the query arguments present. */
static void
build_query(struct pv_buf *b, const char *const *keys, struct json_object *args)
{
	struct json_object *v;
	char num[32];
	const char *s;
	int first = 1;

	for (; *keys != NULL; keys++) {
		if (!json_object_object_get_ex(args, *keys, &v))
			continue;
		if (json_object_is_type(v, json_type_boolean))
			s = json_object_get_boolean(v) ? "true" : "false";
		else if (json_object_is_type(v, json_type_int)) {
			snprintf(num, sizeof(num), "%" PRId64,
			    json_object_get_int64(v));
			s = num;
		} else if (json_object_is_type(v, json_type_string))
			s = json_object_get_string(v);
		else
			continue; /* check_args let only these through */
		pv_buf_putc(b, first ? '?' : '&');
		first = 0;
		pv_buf_puts(b, *keys);
		pv_buf_putc(b, '=');
		pv_buf_urlenc(b, s, strlen(s));
	}
}

/*
 * pv_upstream retries 409s; ours are final (out of stock, already
 * paid) except idempotency_in_flight, which clears up by itself.
 */
static enum pv_upstream_verdict
retry_verdict(void *arg, const struct pv_upstream_resp *resp,
    enum pv_errcode transport)
{
	(void)arg;
	if (transport == PV_OK && resp->status == 409)
		return strstr(resp->body, "idempotency_in_flight") != NULL ?
		    PV_UPSTREAM_RETRY :
		    PV_UPSTREAM_NO_RETRY;
	return PV_UPSTREAM_DEFAULT;
}

/* The text of an API error answer: detail, code, param, request id. */
static const char *
error_text(struct mcp *m, const struct pv_upstream_resp *r,
    struct json_object *body, struct pv_err *err)
{
	struct json_object *e = NULL, *v;
	const char *detail = NULL, *code = "", *param = "", *rid = "";

	if (body != NULL) {
		if (json_object_object_get_ex(body, "detail", &v) &&
		    json_object_is_type(v, json_type_string))
			detail = json_object_get_string(v);
		json_object_object_get_ex(body, "error", &e);
	}
	if (e != NULL && json_object_object_get_ex(e, "code", &v) &&
	    json_object_is_type(v, json_type_string))
		code = json_object_get_string(v);
	if (e != NULL && json_object_object_get_ex(e, "param", &v) &&
	    json_object_is_type(v, json_type_string))
		param = json_object_get_string(v);
	if (e != NULL && json_object_object_get_ex(e, "request_id", &v) &&
	    json_object_is_type(v, json_type_string))
		rid = json_object_get_string(v);
	else if (pv_upstream_resp_header(r, "X-Request-Id") != NULL)
		rid = pv_upstream_resp_header(r, "X-Request-Id");
	if (body != NULL &&
	    json_object_object_get_ex(body, "decline_code", &v) &&
	    json_object_is_type(v, json_type_string))
		return pv_arena_printf(m->arena, err,
		    "%s (HTTP %ld, %s, decline_code %s, request %s)",
		    detail != NULL ? detail : "The payment was declined.",
		    r->status, code, json_object_get_string(v), rid);
	return pv_arena_printf(m->arena, err, "%s (HTTP %ld%s%s%s%s%s%s)",
	    detail != NULL ? detail : "The Pivota API refused the call.",
	    r->status, code[0] != '\0' ? ", " : "", code,
	    param[0] != '\0' ? ", param " : "", param,
	    rid[0] != '\0' ? ", request " : "", rid);
}

/* tools/call: validate, call the API, answer a result or a tool error. */
static void
do_tools_call(struct mcp *m, struct json_object *id, struct json_object *params)
{
	struct pv_err err = { 0 };
	struct json_object *v, *args = NULL, *schema, *body = NULL, *answer;
	struct pv_upstream_hdr hdrs[4];
	struct pv_upstream_req req = { 0 };
	struct pv_upstream_resp resp = { 0 };
	const struct tool *t = NULL;
	const char *name, *url, *payload = NULL, *idem = NULL, *text;
	size_t i, plen = 0, nh = 0;
	struct pv_buf b;

	if (params == NULL || !json_object_object_get_ex(params, "name", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		send_error(m, id, RPC_INVALID_PARAMS,
		    "tools/call needs params.name");
		return;
	}
	name = json_object_get_string(v);
	for (i = 0; i < NTOOLS; i++)
		if (strcmp(tools[i].name, name) == 0)
			t = &tools[i];
	if (t == NULL) {
		send_error(m, id, RPC_INVALID_PARAMS, "Unknown tool");
		return;
	}
	schema = json_object_object_get(json_object_array_get_idx(m->tools,
	                                    (size_t)(t - tools)),
	    "inputSchema");
	if (json_object_object_get_ex(params, "arguments", &args) &&
	    !json_object_is_type(args, json_type_object) &&
	    !json_object_is_type(args, json_type_null)) {
		send_error(m, id, RPC_INVALID_PARAMS,
		    "params.arguments must be an object");
		return;
	}
	if (args == NULL || json_object_is_type(args, json_type_null))
		args = pv_json_new_obj(m->arena, &err);
	if (err.code != PV_OK || check_args(t, schema, args, &err) == -1) {
		send_tool_error(m, id, &err);
		return;
	}

	pv_buf_init(&b, m->arena, MCP_URL_MAX);
	pv_buf_puts(&b, m->base);
	if (build_path(&b, t->path, args, &err) == -1) {
		send_tool_error(m, id, &err);
		return;
	}
	build_query(&b, t->query, args);
	if (pv_buf_finish(&b, &url, NULL, &err) == -1) {
		send_tool_error(m, id, &err);
		return;
	}

	hdrs[nh++] = (struct pv_upstream_hdr){ "X-API-Key", m->key };
	hdrs[nh++] = (struct pv_upstream_hdr){ "Accept", "application/json" };
	if (t->method == PV_UPSTREAM_POST) {
		body = pv_json_new_obj(m->arena, &err);
		for (i = 0; t->body[i] != NULL; i++)
			if (json_object_object_get_ex(args, t->body[i], &v))
				pv_json_set(body, t->body[i], v, &err);
		if (t->fix != NULL)
			t->fix(m, args, body, &err);
		if (pv_json_str_opt(args, "idempotency_key", 1, 255, &idem,
		        &err) == 0 &&
		    idem == NULL)
			pv_crypto_token(m->arena, "mcp_", 16, &idem, &err);
		if (pv_json_to_str(m->arena, body, &payload, &plen, &err) ==
		    -1) {
			send_tool_error(m, id, &err);
			return;
		}
		hdrs[nh++] = (struct pv_upstream_hdr){ "Content-Type",
			"application/json" };
		hdrs[nh++] =
		    (struct pv_upstream_hdr){ "Idempotency-Key", idem };
	}
	req.method = t->method;
	req.url = url;
	req.hdrs = hdrs;
	req.nhdrs = nh;
	req.body = payload;
	req.bodylen = plen;
	req.retry_safe = 1; /* GETs, and POSTs with their one key */
	req.timeout_ms = 30000;
	req.budget_ms = 60000;
	req.retry_fn = retry_verdict;
	if (pv_upstream_do(m->up, m->arena, &req, &resp, &err) == -1 &&
	    resp.status == 0) {
		text = pv_arena_printf(m->arena, &err,
		    "Could not reach Pivota at %s: %s", m->base, err.msg);
		send_tool_result(m, id, text != NULL ? text : err.msg, NULL, 1);
		return;
	}
	pv_err_clear(&err);
	answer = NULL;
	if (pv_json_parse(m->arena, resp.body, resp.bodylen, &answer, &err) ==
	    -1)
		answer = NULL;
	pv_err_clear(&err);
	if (resp.status == 200 && answer != NULL) {
		send_tool_result(m, id, resp.body, answer, 0);
		return;
	}
	text = error_text(m, &resp, answer, &err);
	send_tool_result(m, id, text != NULL ? text : "The call failed.",
	    answer, 1);
}

/* One line of input: a request, a notification or a response. */
static void
handle(struct mcp *m, const char *line, size_t len)
{
	struct pv_err err = { 0 };
	struct json_object *msg, *v, *id = NULL, *params = NULL;
	const char *method;
	size_t i = 0;

	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i < len && line[i] == '[') {
		send_error(m, NULL, RPC_INVALID_REQUEST,
		    "JSON-RPC batches are not supported");
		return;
	}
	if (pv_json_parse(m->arena, line, len, &msg, &err) == -1) {
		send_error(m, NULL, RPC_PARSE_ERROR, "Parse error");
		return;
	}
	json_object_object_get_ex(msg, "id", &id);
	if (!json_object_object_get_ex(msg, "method", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		/* A response to a request of ours: we send none, ignore. */
		if (json_object_object_get_ex(msg, "result", &v) ||
		    json_object_object_get_ex(msg, "error", &v))
			return;
		send_error(m, id, RPC_INVALID_REQUEST, "Invalid Request");
		return;
	}
	method = json_object_get_string(v);
	if (!json_object_object_get_ex(msg, "jsonrpc", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    strcmp(json_object_get_string(v), "2.0") != 0) {
		if (id != NULL)
			send_error(m, id, RPC_INVALID_REQUEST,
			    "jsonrpc must be \"2.0\"");
		return;
	}
	if (id == NULL)
		return; /* notifications (initialized, cancelled) need nothing
		         */
	if (!json_object_is_type(id, json_type_string) &&
	    !json_object_is_type(id, json_type_int)) {
		send_error(m, NULL, RPC_INVALID_REQUEST,
		    "id must be a string or an integer");
		return;
	}
	if (json_object_object_get_ex(msg, "params", &params) &&
	    !json_object_is_type(params, json_type_object)) {
		send_error(m, id, RPC_INVALID_PARAMS,
		    "params must be an object");
		return;
	}
	if (strcmp(method, "initialize") == 0)
		do_initialize(m, id, params);
	else if (strcmp(method, "ping") == 0)
		send_result(m, id, pv_json_new_obj(m->arena, &err), &err);
	else if (strcmp(method, "tools/list") == 0)
		do_tools_list(m, id);
	else if (strcmp(method, "tools/call") == 0)
		do_tools_call(m, id, params);
	else
		send_error(m, id, RPC_NO_METHOD, "Method not found");
}

/* tools/list's array, built once from the table. */
static int
build_tools(struct mcp *m, struct pv_err *err)
{
	struct json_object *arr = pv_json_new_arr(m->keep, err), *schema;
	size_t i;

	for (i = 0; i < NTOOLS; i++) {
		struct json_object *t = pv_json_new_obj(m->keep, err);

		if (pv_json_parse(m->keep, tools[i].schema,
		        strlen(tools[i].schema), &schema, err) == -1)
			return pv_json_err_prefix(err, "schema of %s",
			    tools[i].name);
		pv_json_set_str(t, "name", tools[i].name, err);
		pv_json_set_str(t, "title", tools[i].title, err);
		pv_json_set_str(t, "description", tools[i].description, err);
		pv_json_set(t, "inputSchema", schema, err);
		pv_json_push(arr, t, err);
	}
	m->tools = arr;
	return err->code == PV_OK ? 0 : -1;
}

/* The program; see pv_mcp.h. */
int
pv_mcp_main(int argc, char **argv)
{
	struct mcp m = { 0 };
	struct pv_err err = { 0 };
	const char *url = getenv("PIVOTA_API_URL");
	char *line = NULL, *base;
	size_t cap = 0, n;
	ssize_t got;
	int rc = 1;

	pv_log_init("pivota-mcp", PV_LOG_INFO);
	if (argc > 1) {
		fprintf(stderr,
		    "usage: %s\n  An MCP server on stdin/stdout."
		    " Environment: PIVOTA_API_KEY (required),"
		    " PIVOTA_API_URL (default " MCP_DEFAULT_URL ").\n",
		    argv[0]);
		return strcmp(argv[1], "--help") == 0 ? 0 : 2;
	}
	m.key = getenv("PIVOTA_API_KEY");
	if (m.key == NULL || m.key[0] == '\0' || strpbrk(m.key, "\r\n")) {
		pv_log_msg(PV_LOG_ERROR, "PIVOTA_API_KEY is not set");
		return 1;
	}
	m.version = versions[0];
	m.keep = pv_arena_new(1024u * 1024u);
	m.arena = pv_arena_new(MCP_ARENA_CAP);
	m.up = pv_upstream_new();
	if (m.keep == NULL || m.arena == NULL || m.up == NULL) {
		pv_log_msg(PV_LOG_ERROR, "out of memory at start-up");
		goto out;
	}
	base = pv_arena_strdup(m.keep,
	    url != NULL && url[0] != '\0' ? url : MCP_DEFAULT_URL, &err);
	if (base == NULL || build_tools(&m, &err) == -1 ||
	    pv_upstream_url_loopback(m.up, base, "PIVOTA_API_URL", &err) ==
	        -1) {
		pv_log_msg(PV_LOG_ERROR, "cannot start: %s", err.msg);
		goto out;
	}
	for (n = strlen(base); n > 0 && base[n - 1] == '/'; n--)
		base[n - 1] = '\0';
	m.base = base;
	while ((got = getline(&line, &cap, stdin)) != -1) {
		n = (size_t)got;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			n--;
		if (n == 0)
			continue;
		if (n > MCP_LINE_MAX)
			send_error(&m, NULL, RPC_INVALID_REQUEST,
			    "message too large");
		else
			handle(&m, line, n);
		pv_arena_reset(m.arena);
	}
	rc = 0;
out:
	free(line);
	pv_upstream_free(m.up);
	pv_arena_free(m.arena);
	pv_arena_free(m.keep);
	return rc;
}
