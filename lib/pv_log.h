#ifndef PV_LOG_H
#define PV_LOG_H

#include <stddef.h>

#include "pv_err.h"

/*
 * Logging: one line per event to stderr, which the web server (or
 * the terminal, for pivotactl and the worker) collects.  Untrusted
 * bytes are escaped before they are written, lines are capped, and
 * nothing here ever sees a secret: callers pass paths, ids and error
 * messages, never headers or bodies.
 */
enum pv_log_level {
	PV_LOG_ERROR,
	PV_LOG_WARN,
	PV_LOG_INFO,
	PV_LOG_DEBUG,
	PV_LOG__MAX
};

/* Names the program in every line; called once at start-up. */
void pv_log_init(const char *prog, enum pv_log_level level);

/* The level named "error", "warn", "info" or "debug", or -1. */
int pv_log_level_parse(const char *name);

/* A free-form line at the given level. */
void pv_log_msg(enum pv_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The request line: id, method, path, status, latency, error if any. */
void pv_log_request(const char *request_id, const char *method,
    const char *path, int status, double ms, const struct pv_err *err);

/*
 * Copies src into dst (size bytes, always NUL-terminated) with control
 * bytes, quotes, backslashes and non-ASCII shown as \xNN, cut with "..."
 * when it does not fit.  Returns dst.
 */
char *pv_log_escape(char *dst, size_t size, const char *src);

#endif /* PV_LOG_H */
