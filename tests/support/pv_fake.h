#ifndef PV_FAKE_H
#define PV_FAKE_H

#include <json-c/json.h>

/*
 * Loopback fake providers for tests: tests/fakes/fake_<name>.py run as
 * a child process (Debian's python3, or $PV_PYTHON).  The fake binds an
 * ephemeral port on 127.0.0.1 and prints it, so there is no race for a
 * free port; pv_fake_start() returns once GET /__fake/health answers.
 * The fake exits by itself if the process that started it dies.
 *
 * Start one per test case with an unchecked fixture (it costs ~100 ms)
 * and POST /__fake/reset in each test's checked fixture.  Test code:
 * failures abort with a message rather than return.
 */
struct pv_fake; /* opaque */

/*
 * Starts script (a path relative to the repository root, the tests'
 * working directory) with the NULL-terminated extra args (may be NULL).
 * Returns NULL with a message on stderr if it cannot.
 */
struct pv_fake *pv_fake_start(const char *script, const char *const *args);

/* Stops the fake (SIGTERM, then SIGKILL) and frees f.  NULL is fine. */
void pv_fake_stop(struct pv_fake *f);

/* "http://127.0.0.1:<port>", no trailing slash. */
const char *pv_fake_url(const struct pv_fake *f);

/*
 * Calls the control channel: method ("GET" or "POST") on path (e.g.
 * "/__fake/faults") with body (JSON text, or NULL).  Returns the parsed
 * reply (the caller owns it: json_object_put), or NULL if the call
 * failed or did not answer 200 with JSON (a message goes to stderr).
 */
struct json_object *pv_fake_call(struct pv_fake *f, const char *method,
    const char *path, const char *body);

/* pv_fake_call() that must succeed; drops the reply.  0 or -1. */
int pv_fake_do(struct pv_fake *f, const char *method, const char *path,
    const char *body);

#endif /* PV_FAKE_H */
