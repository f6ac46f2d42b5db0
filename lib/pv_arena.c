/*
 * A bump allocator over a list of blocks.  The first block lives as
 * long as the arena; later blocks are freed by reset.  Deferred
 * destructors are kept in a list allocated from the arena itself and
 * run newest first, so an object deferred after its owner dies first.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pv_arena.h"

#define ALIGN       16u
#define FIRST_BLOCK (64u * 1024u)

struct block {
	struct block *next; /* older block, or NULL */
	size_t size;        /* usable bytes in data */
	size_t used;        /* bytes handed out */
	max_align_t data[]; /* the memory */
};

struct defer {
	struct defer *next; /* deferred earlier */
	void (*fn)(void *); /* destructor */
	void *arg;          /* what it destroys */
};

struct pv_arena {
	struct block *head;   /* newest block; the last in the list is kept */
	struct defer *defers; /* newest first */
	size_t cap;           /* maximum total handed out per request */
	size_t total;         /* handed out since the last reset */
#ifdef PV_TESTING
	long fail_after; /* allocations left before one fails, or -1 */
#endif
};

static struct block *
block_new(size_t size)
{
	struct block *b;

	if (size > SIZE_MAX - sizeof(*b))
		return NULL;
	if ((b = malloc(sizeof(*b) + size)) == NULL)
		return NULL;
	b->next = NULL;
	b->size = size;
	b->used = 0;
	return b;
}

/*
 * Creates an arena that hands out at most cap bytes between resets (0
 * means PV_ARENA_CAP).  Returns NULL if malloc fails; called at start-up.
 */
struct pv_arena *
pv_arena_new(size_t cap)
{
	struct pv_arena *a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->cap = cap != 0 ? cap : PV_ARENA_CAP;
	if ((a->head = block_new(FIRST_BLOCK)) == NULL) {
		free(a);
		return NULL;
	}
#ifdef PV_TESTING
	a->fail_after = -1;
#endif
	return a;
}

/* Runs every deferred destructor and frees all but the first block. */
void
pv_arena_reset(struct pv_arena *a)
{
	struct defer *d;
	struct block *b;

	/* Destructors first: their list lives in the blocks. */
	while ((d = a->defers) != NULL) {
		a->defers = d->next;
		d->fn(d->arg);
	}
	while (a->head->next != NULL) {
		b = a->head;
		a->head = b->next;
		free(b);
	}
	a->head->used = 0;
	a->total = 0;
}

/* Resets and frees the arena.  NULL is allowed. */
void
pv_arena_free(struct pv_arena *a)
{
	if (a == NULL)
		return;
	pv_arena_reset(a);
	free(a->head);
	free(a);
}

/*
 * Returns len bytes aligned for any type, or NULL with PV_E_TOOBIG when
 * the request's cap would be passed or PV_E_NOMEM when malloc fails.
 * A zero len returns a valid, unique pointer.
 */
void *
pv_arena_alloc(struct pv_arena *a, size_t len, struct pv_err *err)
{
	struct block *b;
	size_t need, size;
	void *p;

#ifdef PV_TESTING
	if (a->fail_after == 0) {
		PV_ERR(err, PV_E_NOMEM, NULL, "injected allocation failure");
		return NULL;
	}
	if (a->fail_after > 0)
		a->fail_after--;
#endif
	if (len > a->cap || len + ALIGN > a->cap - a->total) {
		PV_ERR(err, PV_E_TOOBIG, NULL,
		    "request needs more than %zu bytes of memory", a->cap);
		return NULL;
	}
	need = (len + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	if (need == 0)
		need = ALIGN;
	b = a->head;
	if (b->size - b->used < need) {
		size = b->size * 2;
		if (size < need)
			size = need;
		if (size > a->cap)
			size = a->cap;
		if ((b = block_new(size)) == NULL) {
			PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
			return NULL;
		}
		/* Keep the first block last so reset can find it. */
		b->next = a->head;
		a->head = b;
	}
	p = (char *)b->data + b->used;
	b->used += need;
	a->total += need;
	return p;
}

/* Zeroed n * size bytes; overflow is PV_E_TOOBIG. */
void *
pv_arena_calloc(struct pv_arena *a, size_t n, size_t size, struct pv_err *err)
{
	void *p;

	if (size != 0 && n > SIZE_MAX / size) {
		PV_ERR(err, PV_E_TOOBIG, NULL, "allocation size overflows");
		return NULL;
	}
	if ((p = pv_arena_alloc(a, n * size, err)) != NULL)
		memset(p, 0, n * size);
	return p;
}

/* Returns a NUL-terminated arena copy of s[0..len). */
char *
pv_arena_strndup(struct pv_arena *a, const char *s, size_t len,
    struct pv_err *err)
{
	char *p;

	if (len == SIZE_MAX) {
		PV_ERR(err, PV_E_TOOBIG, NULL, "string too long");
		return NULL;
	}
	if ((p = pv_arena_alloc(a, len + 1, err)) == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* Returns an arena copy of the C string s. */
char *
pv_arena_strdup(struct pv_arena *a, const char *s, struct pv_err *err)
{
	return pv_arena_strndup(a, s, strlen(s), err);
}

/* Formats into arena memory, sized exactly.  Returns it or NULL. */
char *
pv_arena_printf(struct pv_arena *a, struct pv_err *err, const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "bad format");
		return NULL;
	}
	if ((p = pv_arena_alloc(a, (size_t)n + 1, err)) == NULL)
		return NULL;
	va_start(ap, fmt);
	n = vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	if (n < 0) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "bad format");
		return NULL;
	}
	return p;
}

/*
 * Arranges for fn(arg) to run at the next reset.  Takes ownership of
 * arg: if recording fails, fn(arg) runs now and -1 is returned.
 */
int
pv_arena_defer(struct pv_arena *a, void (*fn)(void *), void *arg,
    struct pv_err *err)
{
	struct defer *d;

	if ((d = pv_arena_alloc(a, sizeof(*d), err)) == NULL) {
		fn(arg);
		return -1;
	}
	d->fn = fn;
	d->arg = arg;
	d->next = a->defers;
	a->defers = d;
	return 0;
}

/* Bytes handed out since the last reset. */
size_t
pv_arena_used(const struct pv_arena *a)
{
	return a->total;
}

#ifdef PV_TESTING
/* Lets n more allocations succeed, then fails every one (-1: never). */
void
pv_arena_fail_after(struct pv_arena *a, long n)
{
	a->fail_after = n;
}
#endif
