/*
 * The scripted loopback HTTP server of pv_testsrv.h.  One thread
 * accepts; each connection gets a thread that reads a request, records
 * it, takes the next scripted response and writes it, until the peer
 * closes or the script says to hang up.  Stopping wakes every thread:
 * the accept thread through a pipe, connection threads by shutting
 * their sockets down and delays through a condition variable.  Sockets
 * are closed only after their thread is joined, so a descriptor
 * number is never reused under a running thread.
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "pv_testsrv.h"

#define REQ_MAX (64u * 1024u * 1024u) /* a larger request ends the conn */

/* A queued response with its own copies of the strings. */
struct script {
	struct script *next; /* answered after this one */
	int status;          /* HTTP status */
	char *headers;       /* extra lines, or NULL */
	char *body;          /* body bytes, or NULL */
	size_t bodylen;      /* bytes in body */
	int delay_ms;        /* wait before answering */
	int hangup;          /* close without answering */
	int no_length;       /* body ends at close */
};

struct conn {
	struct conn *next;      /* accepted earlier */
	struct pv_testsrv *srv; /* owner */
	pthread_t thread;       /* serves fd */
	int fd;                 /* closed by pv_testsrv_stop() */
	int id;                 /* 1-based connection number */
};

/* Bytes read from a connection but not yet consumed. */
struct rbuf {
	char *data; /* malloc'd */
	size_t len; /* bytes held */
	size_t cap; /* bytes allocated */
};

struct pv_testsrv {
	int lfd;                      /* listening socket */
	int wake[2];                  /* written to stop the accept thread */
	int port;                     /* ephemeral port */
	char url[64];                 /* "http://127.0.0.1:<port>" */
	pthread_t thread;             /* accept thread */
	pthread_mutex_t mu;           /* guards everything below */
	pthread_cond_t cond;          /* broadcast when stopping */
	int stopping;                 /* set once by pv_testsrv_stop() */
	struct script *head;          /* queue of responses */
	struct script **tail;         /* where the next one goes */
	struct script *dflt;          /* used when the queue is empty */
	struct conn *conns;           /* newest first */
	int nconn;                    /* connections accepted */
	struct pv_testsrv_req **reqs; /* received, oldest first */
	size_t nreq;                  /* entries in reqs */
	size_t reqcap;                /* room in reqs */
};

static void *
xmalloc(size_t len)
{
	void *p;

	if ((p = malloc(len != 0 ? len : 1)) == NULL) {
		perror("pv_testsrv");
		abort();
	}
	return p;
}

static void *
xcalloc(size_t n, size_t size)
{
	void *p;

	if ((p = calloc(n != 0 ? n : 1, size)) == NULL) {
		perror("pv_testsrv");
		abort();
	}
	return p;
}

static void *
xrealloc(void *p, size_t len)
{
	if ((p = realloc(p, len)) == NULL) {
		perror("pv_testsrv");
		abort();
	}
	return p;
}

static char *
xmemdup(const char *s, size_t len)
{
	char *p = xmalloc(len + 1);

	if (len != 0)
		memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

static struct script *
script_new(const struct pv_testsrv_resp *r)
{
	struct script *sc = xcalloc(1, sizeof(*sc));

	sc->status = r->status != 0 ? r->status : 200;
	if (r->headers != NULL)
		sc->headers = xmemdup(r->headers, strlen(r->headers));
	if (r->body != NULL) {
		sc->bodylen = r->bodylen != 0 ? r->bodylen : strlen(r->body);
		sc->body = xmemdup(r->body, sc->bodylen);
	}
	sc->delay_ms = r->delay_ms;
	sc->hangup = r->hangup;
	sc->no_length = r->no_length;
	return sc;
}

static struct script *
script_dup(const struct script *o)
{
	struct pv_testsrv_resp r;

	memset(&r, 0, sizeof(r));
	r.status = o->status;
	r.headers = o->headers;
	r.body = o->body;
	r.bodylen = o->bodylen;
	r.delay_ms = o->delay_ms;
	r.hangup = o->hangup;
	r.no_length = o->no_length;
	return script_new(&r);
}

static void
script_free(struct script *sc)
{
	if (sc == NULL)
		return;
	free(sc->headers);
	free(sc->body);
	free(sc);
}

static void
req_free(struct pv_testsrv_req *r)
{
	size_t i;

	for (i = 0; i < r->nhdrs; i++) {
		free(r->names[i]);
		free(r->values[i]);
	}
	free(r->names);
	free(r->values);
	free(r->method);
	free(r->target);
	free(r->headers);
	free(r->body);
	free(r);
}

static int
send_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads more bytes into rb; returns the count, 0 at EOF, -1 on error. */
static ssize_t
fill(int fd, struct rbuf *rb)
{
	ssize_t n;

	if (rb->cap - rb->len < 4096) {
		rb->cap = rb->cap != 0 ? rb->cap * 2 : 8192;
		rb->data = xrealloc(rb->data, rb->cap);
	}
	do
		n = recv(fd, rb->data + rb->len, rb->cap - rb->len, 0);
	while (n == -1 && errno == EINTR);
	if (n > 0)
		rb->len += (size_t)n;
	return n;
}

/* Offset just past the first "\r\n\r\n" in rb, or 0. */
static size_t
head_end(const struct rbuf *rb)
{
	size_t i;

	for (i = 0; i + 4 <= rb->len; i++)
		if (memcmp(rb->data + i, "\r\n\r\n", 4) == 0)
			return i + 4;
	return 0;
}

/* Splits the header lines of r->headers into names and values. */
static void
parse_headers(struct pv_testsrv_req *r)
{
	const char *p = r->headers, *eol, *colon, *v, *end;
	size_t n = 0;

	for (eol = p; (eol = strstr(eol, "\r\n")) != NULL; eol += 2)
		n++;
	r->names = xcalloc(n, sizeof(*r->names));
	r->values = xcalloc(n, sizeof(*r->values));
	for (; (eol = strstr(p, "\r\n")) != NULL; p = eol + 2) {
		colon = memchr(p, ':', (size_t)(eol - p));
		if (colon == NULL)
			continue;
		v = colon + 1;
		end = eol;
		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
		while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		r->names[r->nhdrs] = xmemdup(p, (size_t)(colon - p));
		r->values[r->nhdrs] = xmemdup(v, (size_t)(end - v));
		r->nhdrs++;
	}
}

/* Parses a Content-Length value; -1 if it is not a plain number. */
static long long
content_length(const char *v)
{
	long long n = 0;

	if (v == NULL)
		return 0;
	if (*v == '\0')
		return -1;
	for (; *v != '\0'; v++) {
		if (*v < '0' || *v > '9' || n > (long long)REQ_MAX)
			return -1;
		n = n * 10 + (*v - '0');
	}
	return n;
}

/*
 * Reads one request from c.  Returns it (malloc'd), or NULL at EOF, on
 * a malformed request or when the server stops.  Bytes of a pipelined
 * next request stay in rb.
 */
static struct pv_testsrv_req *
read_request(struct conn *c, struct rbuf *rb)
{
	struct pv_testsrv_req *r;
	const char *line, *sp1, *sp2, *expect;
	size_t hlen, total;
	long long cl;

	while ((hlen = head_end(rb)) == 0)
		if (rb->len > REQ_MAX || fill(c->fd, rb) <= 0)
			return NULL;
	line = rb->data;
	sp1 = memchr(line, ' ', hlen);
	sp2 = sp1 != NULL ?
	    memchr(sp1 + 1, ' ', hlen - (size_t)(sp1 + 1 - line)) :
	    NULL;
	if (sp1 == NULL || sp2 == NULL)
		return NULL;
	r = xcalloc(1, sizeof(*r));
	r->conn = c->id;
	r->method = xmemdup(line, (size_t)(sp1 - line));
	r->target = xmemdup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
	line = strstr(sp2, "\r\n") + 2; /* head_end() found one */
	r->headers = xmemdup(line, hlen - 2 - (size_t)(line - rb->data));
	parse_headers(r);
	if ((cl = content_length(pv_testsrv_header(r, "Content-Length"))) ==
	    -1) {
		req_free(r);
		return NULL;
	}
	total = hlen + (size_t)cl;
	expect = pv_testsrv_header(r, "Expect");
	if (expect != NULL && strcasecmp(expect, "100-continue") == 0 &&
	    rb->len < total &&
	    send_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25) == -1) {
		req_free(r);
		return NULL;
	}
	while (rb->len < total)
		if (fill(c->fd, rb) <= 0) {
			req_free(r);
			return NULL;
		}
	r->body = xmemdup(rb->data + hlen, (size_t)cl);
	r->bodylen = (size_t)cl;
	memmove(rb->data, rb->data + total, rb->len - total);
	rb->len -= total;
	return r;
}

/* Waits ms unless the server stops first; returns -1 if it stopped. */
static int
delay(struct pv_testsrv *s, int ms)
{
	struct timespec until;
	int stopped;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->mu);
	while (!s->stopping &&
	    pthread_cond_timedwait(&s->cond, &s->mu, &until) != ETIMEDOUT)
		;
	stopped = s->stopping;
	pthread_mutex_unlock(&s->mu);
	return stopped ? -1 : 0;
}

/* Answers as scripted; returns 0 to keep the connection, -1 to end it. */
static int
respond(struct pv_testsrv *s, struct conn *c, const struct script *sc)
{
	char *out = NULL;
	size_t outlen = 0;
	FILE *f;
	int rc;

	if (sc->delay_ms > 0 && delay(s, sc->delay_ms) == -1)
		return -1;
	if (sc->hangup)
		return -1;
	if ((f = open_memstream(&out, &outlen)) == NULL) {
		perror("pv_testsrv");
		abort();
	}
	fprintf(f, "HTTP/1.1 %d Scripted\r\n", sc->status);
	if (sc->no_length)
		fputs("Connection: close\r\n", f);
	else
		fprintf(f, "Content-Length: %zu\r\n", sc->bodylen);
	if (sc->headers != NULL)
		fputs(sc->headers, f);
	fputs("\r\n", f);
	if (sc->bodylen != 0)
		fwrite(sc->body, 1, sc->bodylen, f);
	if (fclose(f) != 0) {
		perror("pv_testsrv");
		abort();
	}
	rc = send_all(c->fd, out, outlen);
	free(out);
	return rc == -1 || sc->no_length ? -1 : 0;
}

static void *
conn_main(void *arg)
{
	struct conn *c = arg;
	struct pv_testsrv *s = c->srv;
	struct pv_testsrv_req *r;
	struct script *sc;
	struct rbuf rb = { NULL, 0, 0 };
	int done = 0;

	while (!done && (r = read_request(c, &rb)) != NULL) {
		pthread_mutex_lock(&s->mu);
		if (s->nreq == s->reqcap) {
			s->reqcap = s->reqcap != 0 ? s->reqcap * 2 : 16;
			s->reqs =
			    xrealloc(s->reqs, s->reqcap * sizeof(*s->reqs));
		}
		s->reqs[s->nreq++] = r;
		if ((sc = s->head) != NULL) {
			if ((s->head = sc->next) == NULL)
				s->tail = &s->head;
		} else
			sc = script_dup(s->dflt);
		pthread_mutex_unlock(&s->mu);
		done = respond(s, c, sc) == -1;
		script_free(sc);
	}
	free(rb.data);
	/* The peer sees EOF now; the descriptor is closed at stop. */
	shutdown(c->fd, SHUT_RDWR);
	return NULL;
}

static void *
accept_main(void *arg)
{
	struct pv_testsrv *s = arg;
	struct pollfd pfd[2];
	struct conn *c;
	int fd;

	for (;;) {
		pfd[0].fd = s->lfd;
		pfd[0].events = POLLIN;
		pfd[1].fd = s->wake[0];
		pfd[1].events = POLLIN;
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents != 0)
			break;
		if ((pfd[0].revents & POLLIN) == 0)
			continue;
		if ((fd = accept(s->lfd, NULL, NULL)) == -1)
			continue;
		c = xcalloc(1, sizeof(*c));
		c->srv = s;
		c->fd = fd;
		pthread_mutex_lock(&s->mu);
		if (s->stopping) {
			pthread_mutex_unlock(&s->mu);
			close(fd);
			free(c);
			break;
		}
		c->id = ++s->nconn;
		if (pthread_create(&c->thread, NULL, conn_main, c) != 0) {
			perror("pv_testsrv: pthread_create");
			abort();
		}
		c->next = s->conns;
		s->conns = c;
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

struct pv_testsrv *
pv_testsrv_start(void)
{
	static const struct pv_testsrv_resp fallback = { 500, NULL,
		"pv_testsrv: no scripted response\n", 0, 0, 0, 0 };
	struct pv_testsrv *s;
	struct sockaddr_in sin;
	pthread_condattr_t ca;
	socklen_t slen = sizeof(sin);
	int one = 1, n;

	s = xcalloc(1, sizeof(*s));
	s->lfd = s->wake[0] = s->wake[1] = -1;
	s->tail = &s->head;
	s->dflt = script_new(&fallback);
	if ((s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ==
	        -1)
		goto fail;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = 0;
	if (bind(s->lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(s->lfd, 64) == -1 ||
	    getsockname(s->lfd, (struct sockaddr *)&sin, &slen) == -1 ||
	    pipe(s->wake) == -1)
		goto fail;
	s->port = ntohs(sin.sin_port);
	n = snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", s->port);
	if (n < 0 || (size_t)n >= sizeof(s->url))
		goto fail;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&s->thread, NULL, accept_main, s) != 0) {
		pthread_cond_destroy(&s->cond);
		pthread_mutex_destroy(&s->mu);
		goto fail;
	}
	return s;
fail:
	perror("pv_testsrv_start");
	if (s->lfd != -1)
		close(s->lfd);
	if (s->wake[0] != -1) {
		close(s->wake[0]);
		close(s->wake[1]);
	}
	script_free(s->dflt);
	free(s);
	return NULL;
}

void
pv_testsrv_stop(struct pv_testsrv *s)
{
	struct script *sc;
	struct conn *c;
	size_t i;

	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	pthread_cond_broadcast(&s->cond);
	for (c = s->conns; c != NULL; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_unlock(&s->mu);
	while (write(s->wake[1], "x", 1) == -1 && errno == EINTR)
		;
	pthread_join(s->thread, NULL);
	/* No connection can be added now. */
	while ((c = s->conns) != NULL) {
		s->conns = c->next;
		pthread_join(c->thread, NULL);
		close(c->fd);
		free(c);
	}
	close(s->lfd);
	close(s->wake[0]);
	close(s->wake[1]);
	while ((sc = s->head) != NULL) {
		s->head = sc->next;
		script_free(sc);
	}
	script_free(s->dflt);
	for (i = 0; i < s->nreq; i++)
		req_free(s->reqs[i]);
	free(s->reqs);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

const char *
pv_testsrv_url(const struct pv_testsrv *s)
{
	return s->url;
}

int
pv_testsrv_port(const struct pv_testsrv *s)
{
	return s->port;
}

void
pv_testsrv_push(struct pv_testsrv *s, const struct pv_testsrv_resp *r)
{
	struct script *sc = script_new(r);

	pthread_mutex_lock(&s->mu);
	*s->tail = sc;
	s->tail = &sc->next;
	pthread_mutex_unlock(&s->mu);
}

void
pv_testsrv_set_default(struct pv_testsrv *s, const struct pv_testsrv_resp *r)
{
	struct script *sc = script_new(r), *old;

	pthread_mutex_lock(&s->mu);
	old = s->dflt;
	s->dflt = sc;
	pthread_mutex_unlock(&s->mu);
	script_free(old);
}

size_t
pv_testsrv_pending(struct pv_testsrv *s)
{
	struct script *sc;
	size_t n = 0;

	pthread_mutex_lock(&s->mu);
	for (sc = s->head; sc != NULL; sc = sc->next)
		n++;
	pthread_mutex_unlock(&s->mu);
	return n;
}

size_t
pv_testsrv_nreq(struct pv_testsrv *s)
{
	size_t n;

	pthread_mutex_lock(&s->mu);
	n = s->nreq;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* Requests are never freed before stop, so the pointer stays valid. */
const struct pv_testsrv_req *
pv_testsrv_req(struct pv_testsrv *s, size_t i)
{
	const struct pv_testsrv_req *r = NULL;

	pthread_mutex_lock(&s->mu);
	if (i < s->nreq)
		r = s->reqs[i];
	pthread_mutex_unlock(&s->mu);
	return r;
}

int
pv_testsrv_nconn(struct pv_testsrv *s)
{
	int n;

	pthread_mutex_lock(&s->mu);
	n = s->nconn;
	pthread_mutex_unlock(&s->mu);
	return n;
}

const char *
pv_testsrv_header(const struct pv_testsrv_req *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->nhdrs; i++)
		if (strcasecmp(r->names[i], name) == 0)
			return r->values[i];
	return NULL;
}
