/*
 * Customer and merchant e-mail: rendering from templates/email/,
 * building RFC 5322 / MIME messages, and the "mail.send" job that
 * sends them through pv_upstream_smtp().  See pv_mail.h for the
 * contracts and docs/mail.md for the flow from order event to inbox.
 *
 * Header values are never trusted to be clean: every one is checked
 * for control bytes (CR and LF would start a new header) and addresses
 * must pass pv_valid_email(), so no order or merchant field can add a
 * header or a recipient.  Bodies are quoted-printable with lines of at
 * most 76 bytes, so the relay never has to rewrap them, and a line
 * starting with a dot is encoded, so SMTP's end-of-data cannot appear.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pv_buf.h"
#include "pv_config.h"
#include "pv_db.h"
#include "pv_json.h"
#include "pv_log.h"
#include "pv_mail.h"
#include "pv_money.h"
#include "pv_upstream.h"
#include "pv_valid.h"

#define QP_LINE   76 /* RFC 2045: encoded lines at most this long */
#define WORD_RAW  45 /* raw bytes per encoded-word: 60 base64 chars */
#define ITEMS_MAX (256u * 1024u)
#define BODY_MAX  (512u * 1024u)
#define HDR_MAX   (16u * 1024u)

/* The templates a mail may use, and their subjects. */
enum tpl {
	TPL_ORDER,
	TPL_SHIPPING,
	TPL_REFUND,
	TPL_MERCHANT,
	TPL__MAX
};

static const char *const tpl_names[TPL__MAX] = {
	"order_confirmation",    /* TPL_ORDER */
	"shipping_confirmation", /* TPL_SHIPPING */
	"refund_confirmation",   /* TPL_REFUND */
	"merchant_new_order",    /* TPL_MERCHANT */
};

static const char *const b64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char hexdig[] = "0123456789ABCDEF";

/* 0 if s holds no control byte (tab included), else PV_E_INVALID. */
static int
header_clean(const char *s, const char *field, struct pv_err *err)
{
	if (s == NULL) {
		PV_ERR(err, PV_E_INVALID, field, "%s is required", field);
		return -1;
	}
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f) {
			PV_ERR(err, PV_E_INVALID, field,
			    "%s must not contain CR, LF or other control "
			    "characters",
			    field);
			return -1;
		}
	return 0;
}

static int
ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

static void
put_b64(struct pv_buf *b, const unsigned char *p, size_t len)
{
	char q[4];
	uint32_t v;
	size_t i;

	for (i = 0; i + 2 < len; i += 3) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		q[0] = b64[v >> 18 & 63];
		q[1] = b64[v >> 12 & 63];
		q[2] = b64[v >> 6 & 63];
		q[3] = b64[v & 63];
		pv_buf_append(b, q, 4);
	}
	if (i < len) {
		v = (uint32_t)p[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		q[0] = b64[v >> 18 & 63];
		q[1] = b64[v >> 12 & 63];
		q[2] = i + 1 < len ? b64[v >> 6 & 63] : '=';
		q[3] = '=';
		pv_buf_append(b, q, 4);
	}
}

/*
 * RFC 2047 encoded-words for s, each at most 75 bytes and cut between
 * UTF-8 characters, folded onto continuation lines.
 */
static void
put_words(struct pv_buf *b, const char *s)
{
	size_t len = strlen(s), n;

	while (len > 0) {
		n = len < WORD_RAW ? len : WORD_RAW;
		/* Never split a character: back up to a lead byte. */
		while (n < len && n > 1 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
		pv_buf_puts(b, "=?UTF-8?B?");
		put_b64(b, (const unsigned char *)s, n);
		pv_buf_puts(b, "?=");
		s += n;
		len -= n;
		if (len > 0)
			pv_buf_puts(b, "\r\n ");
	}
}

/* A display name: a quoted-string if ASCII, else encoded-words. */
static void
put_name(struct pv_buf *b, const char *s)
{
	if (!ascii(s)) {
		put_words(b, s);
		return;
	}
	pv_buf_putc(b, '"');
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			pv_buf_putc(b, '\\');
		pv_buf_putc(b, *s);
	}
	pv_buf_putc(b, '"');
}

/* An address header value: checked, then written in angle brackets. */
static int
put_addr(struct pv_buf *b, const char *hdr, const char *name, const char *addr,
    const char *field, struct pv_err *err)
{
	if (header_clean(addr, field, err) == -1 ||
	    pv_valid_email(addr, strlen(addr), field, err) == -1)
		return -1;
	pv_buf_puts(b, hdr);
	pv_buf_puts(b, ": ");
	if (name != NULL) {
		put_name(b, name);
		pv_buf_putc(b, ' ');
	}
	pv_buf_printf(b, "<%s>\r\n", addr);
	return 0;
}

/* "local@domain" in Message-ID syntax (dot-atoms, no brackets). */
static int
msgid_ok(const char *s, struct pv_err *err)
{
	const char *at;

	if (header_clean(s, "message_id", err) == -1)
		return -1;
	at = strchr(s, '@');
	if (at == NULL || at == s || at[1] == '\0' ||
	    strchr(at + 1, '@') != NULL ||
	    strspn(s,
	        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	        "0123456789.-_+=@") != strlen(s)) {
		PV_ERR(err, PV_E_INVALID, "message_id",
		    "message_id must be local@domain");
		return -1;
	}
	return 0;
}

/* RFC 5322 date in UTC; English names whatever the locale. */
static int
put_date(struct pv_buf *b, time_t t, struct pv_err *err)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
		"Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May",
		"Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6 ||
	    tm.tm_mon < 0 || tm.tm_mon > 11) {
		PV_ERR(err, PV_E_INVALID, "date", "date is out of range");
		return -1;
	}
	pv_buf_printf(b, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
	    tm.tm_hour, tm.tm_min, tm.tm_sec);
	return 0;
}

/* Appends piece (len bytes) to a QP line, breaking softly before 76. */
static void
qp_piece(struct pv_buf *b, size_t *col, const char *piece, size_t len)
{
	if (*col + len > QP_LINE - 1) {
		pv_buf_puts(b, "=\r\n");
		*col = 0;
	}
	pv_buf_append(b, piece, len);
	*col += len;
}

/*
 * Quoted-printable (RFC 2045 6.7) of text with CRLF line ends; LF and
 * CRLF in the input both end a line, a lone CR is dropped.  Trailing
 * white space and a leading dot are encoded.
 */
static void
put_qp(struct pv_buf *b, const char *s, size_t len)
{
	unsigned char c;
	size_t i, col = 0;
	char enc[3];

	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c == '\n') {
			pv_buf_puts(b, "\r\n");
			col = 0;
			continue;
		}
		if (c == '\r')
			continue;
		if ((c >= 33 && c <= 126 && c != '=' &&
		        !(c == '.' && col == 0)) ||
		    ((c == ' ' || c == '\t') && i + 1 < len &&
		        s[i + 1] != '\n' && s[i + 1] != '\r')) {
			qp_piece(b, &col, (const char *)&s[i], 1);
			continue;
		}
		enc[0] = '=';
		enc[1] = hexdig[c >> 4];
		enc[2] = hexdig[c & 15];
		qp_piece(b, &col, enc, 3);
	}
	if (col > 0)
		pv_buf_puts(b, "\r\n");
}

/* Builds the message; see pv_mail.h. */
int
pv_mail_build(struct pv_arena *a, const struct pv_mail_msg *m, const char **out,
    size_t *outlen, struct pv_err *err)
{
	struct pv_buf b;
	unsigned h = 2166136261u;
	const char *p;
	char boundary[32];

	if (header_clean(m->from_name, "from_name", err) == -1 ||
	    header_clean(m->subject, "subject", err) == -1 ||
	    msgid_ok(m->msgid, err) == -1)
		return -1;
	if (strlen(m->subject) > PV_MAIL_SUBJECT ||
	    strlen(m->from_name) > PV_MAIL_SUBJECT) {
		PV_ERR(err, PV_E_INVALID, "subject",
		    "subject and sender name are at most %d bytes",
		    PV_MAIL_SUBJECT);
		return -1;
	}
	if (m->text == NULL || m->html == NULL) {
		PV_ERR(err, PV_E_INVALID, "body", "both bodies are required");
		return -1;
	}
	/*
	 * "=_" never occurs in quoted-printable, so the boundary cannot
	 * occur in a part.  FNV-1a of the Message-ID keeps it stable.
	 */
	for (p = m->msgid; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	if (snprintf(boundary, sizeof(boundary), "=_pv_%08x", h) >=
	    (int)sizeof(boundary)) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "boundary does not fit");
		return -1;
	}
	pv_buf_init(&b, a, PV_MAIL_MAX);
	if (put_addr(&b, "From", m->from_name, m->from_addr, "from", err) ==
	        -1 ||
	    (m->reply_to != NULL &&
	        put_addr(&b, "Reply-To", NULL, m->reply_to, "reply_to", err) ==
	            -1) ||
	    put_addr(&b, "To", NULL, m->to, "to", err) == -1)
		return -1;
	pv_buf_puts(&b, "Subject: ");
	if (ascii(m->subject))
		pv_buf_puts(&b, m->subject);
	else
		put_words(&b, m->subject);
	pv_buf_puts(&b, "\r\n");
	if (put_date(&b, m->date, err) == -1)
		return -1;
	pv_buf_printf(&b,
	    "Message-ID: <%s>\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/alternative; boundary=\"%s\"\r\n"
	    "\r\n"
	    "--%s\r\n"
	    "Content-Type: text/plain; charset=UTF-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n",
	    m->msgid, boundary, boundary);
	put_qp(&b, m->text, m->textlen);
	pv_buf_printf(&b,
	    "--%s\r\n"
	    "Content-Type: text/html; charset=UTF-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n",
	    boundary);
	put_qp(&b, m->html, m->htmllen);
	pv_buf_printf(&b, "--%s--\r\n", boundary);
	return pv_buf_finish(&b, out, outlen, err);
}

/* Minor units as "12.34 USD" in arena memory. */
static const char *
money(struct pv_arena *a, int64_t minor, const char *cur, struct pv_err *err)
{
	char buf[PV_MONEY_FORMAT_SIZE];

	if (pv_money_format(minor, cur, buf, sizeof(buf), err) == -1)
		return NULL;
	return pv_arena_printf(a, err, "%s %s", buf, cur);
}

/* " (Large)" for a variant worth naming, "" for the default one. */
static const char *
variant_note(struct pv_arena *a, const char *v, struct pv_err *err)
{
	if (v == NULL || *v == '\0' || strcmp(v, "Default") == 0 ||
	    strcmp(v, "Default Title") == 0)
		return "";
	return pv_arena_printf(a, err, " (%s)", v);
}

/* The item rows, once as text and once as markup. */
static int
render_items(const struct pv_tmpl *set, struct pv_arena *a,
    const struct pv_mail_order *o, const char **text, struct pv_html *html,
    struct pv_err *err)
{
	struct pv_buf tb, hb;
	const char *unit, *sub, *var;
	char qty[24];
	size_t i;

	pv_buf_init(&tb, a, ITEMS_MAX);
	pv_buf_init(&hb, a, ITEMS_MAX);
	for (i = 0; i < o->nitems; i++) {
		const struct pv_mail_item *it = &o->items[i];

		if (snprintf(qty, sizeof(qty), "%" PRId64, it->quantity) < 0 ||
		    (unit = money(a, it->unit_minor, o->currency, err)) ==
		        NULL ||
		    (sub = money(a, it->subtotal_minor, o->currency, err)) ==
		        NULL ||
		    (var = variant_note(a, it->variant_title, err)) == NULL)
			return -1;
		{
			struct pv_tmpl_arg args[] = {
				PV_TEXT("title", it->title),
				PV_TEXT("variant", var),
				PV_TEXT("sku", it->sku != NULL ? it->sku : ""),
				PV_TEXT("quantity", qty),
				PV_TEXT("unit_price", unit),
				PV_TEXT("subtotal", sub),
				PV_END,
			};
			if (pv_tmpl_render(set, "email/partials/item.txt", args,
			        &tb, err) == -1 ||
			    pv_tmpl_render(set, "email/partials/item.html",
			        args, &hb, err) == -1)
				return -1;
		}
	}
	if (pv_buf_finish(&tb, text, NULL, err) == -1)
		return -1;
	return pv_tmpl_finish_html(&hb, html, err);
}

/* The subject of template t for o (arena memory). */
static const char *
subject(struct pv_arena *a, enum tpl t, const struct pv_mail_order *o,
    const char *total, struct pv_err *err)
{
	switch (t) {
	case TPL_ORDER:
		return pv_arena_printf(a, err, "Your order %s from %s",
		    o->order_id, o->merchant_name);
	case TPL_SHIPPING:
		return pv_arena_printf(a, err,
		    "Your order %s from %s has shipped", o->order_id,
		    o->merchant_name);
	case TPL_REFUND:
		return pv_arena_printf(a, err,
		    "Refund for your order %s from %s", o->order_id,
		    o->merchant_name);
	case TPL_MERCHANT:
		return pv_arena_printf(a, err, "New order %s: %s", o->order_id,
		    total);
	case TPL__MAX:
		break;
	}
	PV_ERR(err, PV_E_INTERNAL, NULL, "bad template");
	return NULL;
}

/* Renders one mail; see pv_mail.h. */
int
pv_mail_render(const struct pv_tmpl *set, struct pv_arena *a,
    const char *template, const struct pv_mail_order *o,
    struct pv_mail_body *out, struct pv_err *err)
{
	const char *sub, *ship, *tax, *total, *refunded, *items_text,
	    *track_line = "", *name_txt, *name_html, *subj;
	struct pv_html items_html, link = PV_HTML_LIT("");
	struct pv_buf b;
	size_t t;

	for (t = 0; t < TPL__MAX; t++)
		if (strcmp(tpl_names[t], template) == 0)
			break;
	if (t == TPL__MAX) {
		PV_ERR(err, PV_E_INVALID, "template",
		    "unknown mail template %s", template);
		return -1;
	}
	if (pv_money_currency_check(o->currency, "currency", err) == -1 ||
	    (sub = money(a, o->subtotal_minor, o->currency, err)) == NULL ||
	    (ship = money(a, o->shipping_minor, o->currency, err)) == NULL ||
	    (tax = money(a, o->tax_minor, o->currency, err)) == NULL ||
	    (total = money(a, o->total_minor, o->currency, err)) == NULL ||
	    (refunded = money(a, o->refunded_minor, o->currency, err)) ==
	        NULL ||
	    render_items(set, a, o, &items_text, &items_html, err) == -1 ||
	    (subj = subject(a, (enum tpl)t, o, total, err)) == NULL)
		return -1;
	/* Only an https link is offered: no javascript: or data: URLs. */
	if (o->tracking_url != NULL &&
	    strncmp(o->tracking_url, "https://", 8) == 0 &&
	    o->tracking_url[8] != '\0') {
		struct pv_tmpl_arg largs[] = {
			PV_TEXT("rest", o->tracking_url + 8),
			PV_END,
		};
		if (pv_tmpl_render_html(set,
		        "email/partials/tracking_link.html", largs, a, HDR_MAX,
		        &link, err) == -1 ||
		    (track_line = pv_arena_printf(a, err,
		         "Track your parcel: %s\n", o->tracking_url)) == NULL)
			return -1;
	}
	name_txt = pv_arena_printf(a, err, "%s.txt", template);
	name_html = pv_arena_printf(a, err, "%s.html", template);
	if (name_txt == NULL || name_html == NULL)
		return -1;
	{
		char path_txt[PV_TMPL_NAME_MAX], path_html[PV_TMPL_NAME_MAX];
		struct pv_tmpl_arg args[] = {
			PV_TEXT("order_id", o->order_id),
			PV_TEXT("merchant", o->merchant_name),
			PV_TEXT("customer", o->customer),
			PV_TEXT("subtotal", sub),
			PV_TEXT("shipping", ship),
			PV_TEXT("tax", tax),
			PV_TEXT("total", total),
			PV_TEXT("refunded", refunded),
			PV_TEXT("ship_name", o->ship_name),
			PV_TEXT("ship_line1", o->ship_line1),
			PV_TEXT("ship_line2", o->ship_line2),
			PV_TEXT("ship_city", o->ship_city),
			PV_TEXT("ship_state", o->ship_state),
			PV_TEXT("ship_postal", o->ship_postal),
			PV_TEXT("ship_country", o->ship_country),
			PV_TEXT("carrier",
			    o->carrier != NULL ? o->carrier : "not given"),
			PV_TEXT("tracking",
			    o->tracking != NULL ? o->tracking : "not given"),
			PV_TEXT("tracking_line", track_line),
			PV_HTML("tracking_link", &link),
			PV_TEXT("items", items_text),
			PV_HTML("items_html", &items_html),
			PV_END,
		};
		/* The text template binds items as text, the HTML one as
		 * markup. */
		if (snprintf(path_txt, sizeof(path_txt), "email/%s",
		        name_txt) >= (int)sizeof(path_txt) ||
		    snprintf(path_html, sizeof(path_html), "email/%s",
		        name_html) >= (int)sizeof(path_html)) {
			PV_ERR(err, PV_E_INTERNAL, NULL,
			    "template name too long");
			return -1;
		}
		pv_buf_init(&b, a, BODY_MAX);
		if (pv_tmpl_render(set, path_txt, args, &b, err) == -1 ||
		    pv_buf_finish(&b, &out->text, &out->textlen, err) == -1)
			return -1;
		pv_buf_init(&b, a, BODY_MAX);
		if (pv_tmpl_render(set, path_html, args, &b, err) == -1 ||
		    pv_buf_finish(&b, &out->html, &out->htmllen, err) == -1)
			return -1;
	}
	out->subject = subj;
	return 0;
}

/* Columns of the mail query, in order. */
enum {
	M_STATE,
	M_TEMPLATE,
	M_RECIPIENT,
	M_TO,
	M_TOKEN,
	M_CREATED,
	M_ORDER,
	M_PUBLIC,
	M_MERCHANT,
	M_MERCHANT_EMAIL,
	M_CUSTOMER,
	M_CURRENCY,
	M_SUBTOTAL,
	M_SHIPPING,
	M_TAX,
	M_TOTAL,
	M_REFUNDED,
	M_SHIP_NAME,
	M_LINE1,
	M_LINE2,
	M_CITY,
	M_STATE_REGION,
	M_POSTAL,
	M_COUNTRY,
	M_CARRIER,
	M_TRACKING,
	M_TRACKING_URL
};

static int64_t
num(const PGresult *res, int r, int c)
{
	return strtoll(PQgetvalue(res, r, c), NULL, 10);
}

/* Reads the order of mail row res into o, with its items. */
static int
load_order(struct pv_ctx *ctx, const PGresult *res, struct pv_mail_order *o,
    struct pv_err *err)
{
	const char *p[1] = { PQgetvalue(res, 0, M_ORDER) };
	struct pv_mail_item *items;
	PGresult *ir;
	int r, n;

	memset(o, 0, sizeof(*o));
	o->order_id = PQgetvalue(res, 0, M_PUBLIC);
	o->merchant_name = PQgetvalue(res, 0, M_MERCHANT);
	o->customer = PQgetvalue(res, 0, M_CUSTOMER);
	o->currency = PQgetvalue(res, 0, M_CURRENCY);
	o->subtotal_minor = num(res, 0, M_SUBTOTAL);
	o->shipping_minor = num(res, 0, M_SHIPPING);
	o->tax_minor = num(res, 0, M_TAX);
	o->total_minor = num(res, 0, M_TOTAL);
	o->refunded_minor = num(res, 0, M_REFUNDED);
	o->ship_name = PQgetvalue(res, 0, M_SHIP_NAME);
	o->ship_line1 = PQgetvalue(res, 0, M_LINE1);
	o->ship_line2 = PQgetvalue(res, 0, M_LINE2);
	o->ship_city = PQgetvalue(res, 0, M_CITY);
	o->ship_state = PQgetvalue(res, 0, M_STATE_REGION);
	o->ship_postal = PQgetvalue(res, 0, M_POSTAL);
	o->ship_country = PQgetvalue(res, 0, M_COUNTRY);
	o->carrier = pv_db_get(res, 0, M_CARRIER);
	o->tracking = pv_db_get(res, 0, M_TRACKING);
	o->tracking_url = pv_db_get(res, 0, M_TRACKING_URL);
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT title, variant_title, sku, quantity,"
	               " unit_price_minor, subtotal_minor FROM order_items"
	               " WHERE order_id = $1::bigint ORDER BY line"),
	        1, p, &ir, err) == -1)
		return -1;
	n = PQntuples(ir);
	items = pv_arena_calloc(ctx->arena, (size_t)n + 1, sizeof(*items), err);
	if (items == NULL)
		return -1;
	for (r = 0; r < n; r++) {
		items[r].title = PQgetvalue(ir, r, 0);
		items[r].variant_title = PQgetvalue(ir, r, 1);
		items[r].sku = PQgetvalue(ir, r, 2);
		items[r].quantity = num(ir, r, 3);
		items[r].unit_minor = num(ir, r, 4);
		items[r].subtotal_minor = num(ir, r, 5);
	}
	o->items = items;
	o->nitems = (size_t)n;
	return 0;
}

/*
 * Gives up on a mail: its log says failed with why, and the order gets
 * a flagged mail.failed event, in one transaction.
 */
static int
give_up(struct pv_ctx *ctx, const char *id, const PGresult *res,
    const struct pv_err *why, struct pv_err *err)
{
	const char *p[5] = { id, PQgetvalue(res, 0, M_ORDER), why->msg,
		PQgetvalue(res, 0, M_TEMPLATE),
		PQgetvalue(res, 0, M_RECIPIENT) };
	const char *q[2] = { id, why->msg };
	int rc = -1;

	if (pv_db_begin(ctx, err) == -1)
		return -1;
	if (pv_db_exec(ctx,
	        PV_SQL("UPDATE mail_log SET state = 'failed', last_error = $2"
	               " WHERE id = $1::bigint AND state <> 'sent'"),
	        2, q, NULL, err) == -1 ||
	    pv_db_exec(ctx,
	        PV_SQL("SELECT pv_order_event($2::bigint, 'mail.failed',"
	               " jsonb_build_object('mail_id', $1::text, 'template', "
	               "$4::text,"
	               " 'recipient', $5::text, 'error', $3::text), true)"),
	        5, p, NULL, err) == -1)
		goto out;
	rc = 0;
out:
	if (pv_db_end(ctx, rc == 0, err) == -1)
		rc = -1;
	return rc;
}

/* The domain of our sender address, for Message-IDs. */
static const char *
mail_domain(const struct pv_config *cfg)
{
	const char *at = strrchr(cfg->mail_from, '@');

	return at != NULL && at[1] != '\0' ? at + 1 : "pivota.invalid";
}

/*
 * Renders, builds and sends the mail of row res.  Returns 0, -1 to
 * retry, or PV_JOB_PERMANENT.
 */
static int
deliver(struct pv_ctx *ctx, const char *id, const PGresult *res,
    struct pv_err *err)
{
	const struct pv_config *cfg = ctx->cfg;
	struct pv_upstream_smtp smtp;
	struct pv_mail_order o;
	struct pv_mail_body body;
	struct pv_mail_msg m;
	const char *msg, *p[1] = { id };
	size_t msglen;
	long reply = 0;

	if (cfg->smtp_url == NULL || cfg->smtp_url[0] == '\0') {
		PV_ERR(err, PV_E_UNAVAILABLE, "PIVOTA_SMTP_URL",
		    "PIVOTA_SMTP_URL is not set: mail waits");
		return -1;
	}
	if (ctx->tmpl == NULL &&
	    (ctx->tmpl = pv_tmpl_load(cfg->template_dir, err)) == NULL)
		return -1;
	memset(&m, 0, sizeof(m));
	if (load_order(ctx, res, &o, err) == -1)
		return -1;
	if (pv_mail_render(ctx->tmpl, ctx->arena,
	        PQgetvalue(res, 0, M_TEMPLATE), &o, &body, err) == -1)
		return PV_JOB_PERMANENT;
	m.from_name =
	    pv_arena_printf(ctx->arena, err, "%s" PV_MAIL_VIA, o.merchant_name);
	m.msgid = pv_arena_printf(ctx->arena, err, "%s@%s",
	    PQgetvalue(res, 0, M_TOKEN), mail_domain(cfg));
	if (m.from_name == NULL || m.msgid == NULL)
		return -1;
	m.from_addr = cfg->mail_from;
	m.reply_to = PQgetvalue(res, 0, M_MERCHANT_EMAIL);
	m.to = PQgetvalue(res, 0, M_TO);
	m.subject = body.subject;
	m.date = (time_t)num(res, 0, M_CREATED);
	m.text = body.text;
	m.textlen = body.textlen;
	m.html = body.html;
	m.htmllen = body.htmllen;
	if (pv_mail_build(ctx->arena, &m, &msg, &msglen, err) == -1)
		return PV_JOB_PERMANENT;
	/* Committed before the relay sees a byte: a crash leaves a trace. */
	if (pv_db_exec(ctx,
	        PV_SQL("UPDATE mail_log SET state = 'sending',"
	               " tries = tries + 1 WHERE id = $1::bigint"),
	        1, p, NULL, err) == -1)
		return -1;
	memset(&smtp, 0, sizeof(smtp));
	smtp.url = cfg->smtp_url;
	smtp.user = cfg->smtp_user;
	smtp.password = cfg->smtp_password;
	smtp.from = cfg->mail_from;
	smtp.rcpt = m.to;
	smtp.msg = msg;
	smtp.msglen = msglen;
	if (pv_upstream_smtp(ctx->up, &smtp, &reply, err) == -1)
		return reply >= 500 && reply <= 599 ? PV_JOB_PERMANENT : -1;
	return pv_db_exec(ctx,
	    PV_SQL("UPDATE mail_log SET state = 'sent', sent_at = now(),"
	           " last_error = NULL WHERE id = $1::bigint"),
	    1, p, NULL, err);
}

/* The mail.send handler; see pv_mail.h. */
int
pv_mail_job(struct pv_ctx *ctx, const struct pv_job *job, struct pv_err *err)
{
	const char *id, *p[1];
	struct pv_err why = { 0 }, dberr = { 0 };
	PGresult *res;
	int64_t n;
	int rc;

	if (pv_json_str(job->args, "mail_id", 1, 20, &id, err) == -1 ||
	    pv_valid_int64(id, 1, INT64_MAX, &n, "mail_id", err) == -1)
		return PV_JOB_PERMANENT;
	p[0] = id;
	if (pv_db_exec(ctx,
	        PV_SQL("SELECT l.state, l.template, l.recipient, l.to_addr,"
	               " l.token, extract(epoch FROM l.created_at)::bigint,"
	               " o.id, o.public_id, m.business_name, m.email,"
	               " o.customer_email, o.currency, o.subtotal_minor,"
	               " o.shipping_minor, o.tax_minor, o.total_minor,"
	               " coalesce((l.detail->>'refunded_minor')::bigint,"
	               "  o.refunded_minor),"
	               " o.ship_name, o.ship_line1, o.ship_line2, o.ship_city,"
	               " o.ship_state, o.ship_postal_code, o.ship_country,"
	               " coalesce(l.detail->>'carrier', o.carrier),"
	               " coalesce(l.detail->>'tracking_number',"
	               "  o.tracking_number),"
	               " coalesce(l.detail->>'tracking_url', o.tracking_url)"
	               " FROM mail_log l JOIN orders o ON o.id = l.order_id"
	               " JOIN merchants m ON m.id = o.merchant_id"
	               " WHERE l.id = $1::bigint"),
	        1, p, &res, err) == -1)
		return -1;
	if (PQntuples(res) != 1) {
		PV_ERR(err, PV_E_NOTFOUND, "mail_id", "no mail %s", id);
		return PV_JOB_PERMANENT;
	}
	if (strcmp(PQgetvalue(res, 0, M_STATE), "sent") == 0)
		return 0;
	if (strcmp(PQgetvalue(res, 0, M_STATE), "sending") == 0)
		pv_log_msg(PV_LOG_WARN,
		    "mail %s: an earlier try may have reached the relay;"
		    " sending again with the same Message-ID",
		    id);
	rc = deliver(ctx, id, res, &why);
	if (rc == 0)
		return 0;
	*err = why;
	/* Best effort: the error stays the job's own either way. */
	if (rc == PV_JOB_PERMANENT || job->attempt >= job->max_attempts) {
		if (give_up(ctx, id, res, &why, &dberr) == -1)
			pv_log_msg(PV_LOG_WARN, "mail %s: cannot record: %s",
			    id, dberr.msg);
	} else {
		const char *q[2] = { id, why.msg };

		if (pv_db_exec(ctx,
		        PV_SQL("UPDATE mail_log SET last_error = $2"
		               " WHERE id = $1::bigint"),
		        2, q, NULL, &dberr) == -1)
			pv_log_msg(PV_LOG_WARN, "mail %s: cannot record: %s",
			    id, dberr.msg);
	}
	return rc;
}
