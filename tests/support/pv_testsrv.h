#ifndef PV_TESTSRV_H
#define PV_TESTSRV_H

#include <stddef.h>

/*
 * A scripted HTTP/1.1 server on 127.0.0.1 for tests of outbound HTTP:
 * a fake provider that answers from a queue of canned responses and
 * records every request it receives, so a test can assert what was
 * sent (headers, byte-exact bodies) and how often (retries).
 *
 * It listens on an ephemeral port and serves each connection on its
 * own thread, with keep-alive and Content-Length request bodies
 * (chunked request bodies are not supported).  Responses are taken
 * from the queue in the order requests arrive; when the queue is empty
 * the default response is used, which is a 500 unless set.  Everything
 * it allocates is freed by pv_testsrv_stop(); memory failure aborts.
 */
struct pv_testsrv; /* opaque */

/* One scripted response.  pv_testsrv_push() copies it. */
struct pv_testsrv_resp {
	int status;          /* HTTP status; 0 means 200 */
	const char *headers; /* extra lines, each ending "\r\n", or NULL */
	const char *body;    /* or NULL for an empty body */
	size_t bodylen;      /* bytes in body; 0 means strlen(body) */
	int delay_ms;        /* wait this long before answering */
	int hangup;          /* close the connection without answering */
	int no_length;       /* omit Content-Length; close to end the body */
};

/* One received request.  Owned by the server until it stops. */
struct pv_testsrv_req {
	char *method;   /* e.g. "POST" */
	char *target;   /* e.g. "/v1/refunds?expand[]=charge" */
	char *headers;  /* raw header lines, each ending "\r\n" */
	char **names;   /* header names, as received */
	char **values;  /* header values, trimmed */
	size_t nhdrs;   /* entries in names and values */
	char *body;     /* the body, NUL-terminated */
	size_t bodylen; /* bytes in body, excluding the NUL */
	int conn;       /* 1-based number of the connection it came on */
};

/* Starts listening; NULL (with a message on stderr) if it cannot. */
struct pv_testsrv *pv_testsrv_start(void);
/* Closes every connection, joins the threads and frees everything. */
void pv_testsrv_stop(struct pv_testsrv *s);

/* "http://127.0.0.1:<port>", no trailing slash. */
const char *pv_testsrv_url(const struct pv_testsrv *s);
int pv_testsrv_port(const struct pv_testsrv *s);

/* Appends a response to the queue. */
void pv_testsrv_push(struct pv_testsrv *s, const struct pv_testsrv_resp *r);
/* The response used when the queue is empty. */
void pv_testsrv_set_default(struct pv_testsrv *s,
    const struct pv_testsrv_resp *r);
/* Scripted responses not yet used. */
size_t pv_testsrv_pending(struct pv_testsrv *s);

/* Requests received so far, and the i-th of them (0-based), or NULL. */
size_t pv_testsrv_nreq(struct pv_testsrv *s);
const struct pv_testsrv_req *pv_testsrv_req(struct pv_testsrv *s, size_t i);
/* Connections accepted so far. */
int pv_testsrv_nconn(struct pv_testsrv *s);

/* The first value of header name (any case) in r, or NULL. */
const char *pv_testsrv_header(const struct pv_testsrv_req *r, const char *name);

#endif /* PV_TESTSRV_H */
