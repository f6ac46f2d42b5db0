#ifndef PV_ARENA_H
#define PV_ARENA_H

#include <stddef.h>

#include "pv_err.h"

/*
 * Per-request arena.  Everything a handler allocates comes from here
 * and is released at once by pv_arena_reset() after the response is
 * written.  Foreign objects (PGresult, json_object, CURL) are handed
 * over with pv_arena_defer() and die with the arena.  Handlers never
 * call malloc() or free().
 *
 * The arena keeps its first block across resets so a steady stream of
 * small requests costs no malloc at all; larger requests grow it in
 * blocks that reset() returns to the system.  The total is capped:
 * hitting the cap is PV_E_TOOBIG (413), never a crash.
 */
struct pv_arena; /* opaque */

/* Default cap per request (8 MiB). */
#define PV_ARENA_CAP (8u * 1024u * 1024u)

struct pv_arena *pv_arena_new(size_t cap);
void pv_arena_reset(struct pv_arena *a);
void pv_arena_free(struct pv_arena *a);

/* Returns arena memory, or NULL with PV_E_TOOBIG (cap) or PV_E_NOMEM. */
void *pv_arena_alloc(struct pv_arena *a, size_t len, struct pv_err *err);

/* Like pv_arena_alloc() but zeroed; n * size is checked for overflow. */
void *pv_arena_calloc(struct pv_arena *a, size_t n, size_t size,
    struct pv_err *err);

/* Copies len bytes and appends a NUL.  Returns arena memory or NULL. */
char *pv_arena_strndup(struct pv_arena *a, const char *s, size_t len,
    struct pv_err *err);
char *pv_arena_strdup(struct pv_arena *a, const char *s, struct pv_err *err);

/* Formats into arena memory.  Returns it or NULL. */
char *pv_arena_printf(struct pv_arena *a, struct pv_err *err, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

/* Takes ownership of arg.  If this fails, fn(arg) has already run. */
int pv_arena_defer(struct pv_arena *a, void (*fn)(void *), void *arg,
    struct pv_err *err);

/* Bytes handed out since the last reset (for logs and tests). */
size_t pv_arena_used(const struct pv_arena *a);

#ifdef PV_TESTING
/* Lets n more allocations succeed, then fails every one; -1 = never. */
void pv_arena_fail_after(struct pv_arena *a, long n);
#endif

#endif /* PV_ARENA_H */
