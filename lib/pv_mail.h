#ifndef PV_MAIL_H
#define PV_MAIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "pv_arena.h"
#include "pv_err.h"
#include "pv_http.h"
#include "pv_job.h"
#include "pv_tmpl.h"

/*
 * Customer and merchant e-mail (issue 11, docs/mail.md).  The database
 * decides which mails an order event calls for and queues them
 * (migrations/0015_mail.sql: mail_log rows and "mail.send" jobs); this
 * module renders a queued mail from templates/email/, builds the RFC
 * 5322 message and hands it to the relay with pv_upstream_smtp().
 *
 * Three layers, each usable alone (the unit tests use the first two):
 *
 *   pv_mail_render()  the subject and the text and HTML bodies of one
 *                     template for one order (struct pv_mail_order)
 *   pv_mail_build()   the message: headers checked and encoded, a
 *                     multipart/alternative body in quoted-printable,
 *                     CRLF line ends
 *   pv_mail_job()     the "mail.send" job: reads the mail and its
 *                     order, renders, builds, sends, records
 *
 * Everything returned lives in the caller's arena.
 */

#define PV_MAIL_KIND    "mail.send"
#define PV_MAIL_MAX     (1024u * 1024u) /* one whole message, bytes */
#define PV_MAIL_VIA     " via Pivota"   /* after the merchant's name */
#define PV_MAIL_SUBJECT 200             /* longest subject, bytes */

/* One message to build.  Strings are borrowed UTF-8, NUL-terminated. */
struct pv_mail_msg {
	const char *from_name; /* display name, e.g. "Acme via Pivota" */
	const char *from_addr; /* our sender (PIVOTA_MAIL_FROM) */
	const char *reply_to;  /* the merchant's address, or NULL */
	const char *to;        /* the recipient */
	const char *subject;   /* any UTF-8; encoded-word if not ASCII */
	const char *msgid;     /* "local@domain", without the brackets */
	time_t date;           /* the Date header (UTC) */
	const char *text;      /* plain-text body */
	size_t textlen;        /* bytes in text */
	const char *html;      /* HTML body */
	size_t htmllen;        /* bytes in html */
};

/*
 * Builds the message m describes: From, Reply-To, To, Subject, Date,
 * Message-ID, MIME-Version and a multipart/alternative body (text,
 * then HTML, both UTF-8 quoted-printable), every line ending in CRLF.
 * Addresses must pass pv_valid_email(); no header value may hold CR,
 * LF or another control byte, so nothing can add a header.  The
 * boundary is derived from the Message-ID, so the same mail always
 * builds the same bytes.  Returns 0 with *out (arena, NUL-terminated)
 * and *outlen, or -1 with PV_E_INVALID naming the bad field, or
 * PV_E_NOMEM / PV_E_TOOBIG (over PV_MAIL_MAX).
 */
int pv_mail_build(struct pv_arena *a, const struct pv_mail_msg *m,
    const char **out, size_t *outlen, struct pv_err *err);

/* One line of an order, as the mail shows it. */
struct pv_mail_item {
	const char *title;         /* product title at order time */
	const char *variant_title; /* "Default" or e.g. "Large / Blue" */
	const char *sku;           /* may be "" */
	int64_t quantity;          /* units */
	int64_t unit_minor;        /* price of one, minor units */
	int64_t subtotal_minor;    /* quantity * unit_minor */
};

/* What a template may show of an order.  Strings are borrowed. */
struct pv_mail_order {
	const char *order_id;      /* public id, ORD_... */
	const char *merchant_name; /* business name */
	const char *customer;      /* the customer's address */
	const char *currency;      /* ISO 4217; amounts are formatted in it */
	int64_t subtotal_minor;    /* items */
	int64_t shipping_minor;    /* shipping fee */
	int64_t tax_minor;         /* tax */
	int64_t total_minor;       /* what was charged */
	int64_t refunded_minor;    /* refunded so far (at the event) */
	const char *ship_name;     /* shipping address lines; "" if absent */
	const char *ship_line1;    /* street */
	const char *ship_line2;    /* more street, or "" */
	const char *ship_city;     /* city */
	const char *ship_state;    /* state or region, or "" */
	const char *ship_postal;   /* postal code */
	const char *ship_country;  /* ISO 3166 alpha-2 */
	const char *carrier;       /* or NULL */
	const char *tracking;      /* tracking number, or NULL */
	const char *tracking_url;  /* linked only if https://, or NULL */
	const struct pv_mail_item *items; /* the lines, in order */
	size_t nitems;                    /* how many */
};

/* A rendered mail: subject and both bodies, arena memory. */
struct pv_mail_body {
	const char *subject; /* one line */
	const char *text;    /* plain text, LF line ends */
	size_t textlen;      /* bytes in text */
	const char *html;    /* HTML, escaped by pv_tmpl */
	size_t htmllen;      /* bytes in html */
};

/*
 * Renders template (order_confirmation, shipping_confirmation,
 * refund_confirmation, merchant_new_order) for o from set's
 * email/<template>.txt and .html, with the items from
 * email/partials/item.txt and .html and every amount formatted in the
 * order's currency.  The HTML body escapes what it shows; the text
 * body shows it verbatim.  Returns 0, or -1 with PV_E_INVALID (unknown
 * template or currency) or what pv_tmpl_render() sets.
 */
int pv_mail_render(const struct pv_tmpl *set, struct pv_arena *a,
    const char *template, const struct pv_mail_order *o,
    struct pv_mail_body *out, struct pv_err *err);

/*
 * The "mail.send" handler: {"mail_id": "<mail_log.id>"}.  A mail whose
 * log says sent is done at once (a re-run after a crash never sends it
 * again).  Otherwise it marks the try ("sending"), renders, builds and
 * sends the mail, and marks it sent.  A worker killed between the
 * relay's acceptance and that mark leaves it "sending": the next try
 * sends it once more, with the same Message-ID and bytes, so the
 * receiving side can tell it is one mail.  Relay refusals with a 5xx
 * code, and mails that cannot be built, fail for good (PV_JOB_PERMANENT);
 * everything else is retried with the queue's backoff.  When a mail
 * fails for good or on its last attempt, its log says failed and the
 * order gets a flagged "mail.failed" event.  The templates are loaded
 * on the first mail of the process (ctx->tmpl, freed by pv_ctx_close).
 * With no PIVOTA_SMTP_URL the mail waits (retried) until one is set.
 */
int pv_mail_job(struct pv_ctx *ctx, const struct pv_job *job,
    struct pv_err *err);

#endif /* PV_MAIL_H */
