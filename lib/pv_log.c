/*
 * Log lines look like
 *   health req_9f2c... GET /health 200 0.41ms
 *   orders req_... POST /agent/v1/orders 500 3.20ms PV_E_DB pv_db.c:120 "..."
 * so they grep well and never span lines.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pv_log.h"

static const char *log_prog = "pivota";
static enum pv_log_level log_level = PV_LOG_INFO;

static const char *const level_names[PV_LOG__MAX] = {
	"error", /* PV_LOG_ERROR */
	"warn",  /* PV_LOG_WARN */
	"info",  /* PV_LOG_INFO */
	"debug", /* PV_LOG_DEBUG */
};

/* Sets the program name (borrowed: a string literal) and the level. */
void
pv_log_init(const char *prog, enum pv_log_level level)
{
	log_prog = prog;
	log_level = level;
}

/* Maps a level name to its level, or -1 if unknown. */
int
pv_log_level_parse(const char *name)
{
	int i;

	for (i = 0; i < PV_LOG__MAX; i++)
		if (strcmp(level_names[i], name) == 0)
			return i;
	return -1;
}

/* Escapes src for a log line; see pv_log.h. */
char *
pv_log_escape(char *dst, size_t size, const char *src)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)src;
	size_t o = 0;

	if (size == 0)
		return dst;
	for (; *s != '\0'; s++) {
		if (*s >= 0x20 && *s < 0x7f && *s != '"' && *s != '\\') {
			if (o + 1 >= size)
				goto cut;
			dst[o++] = (char)*s;
			continue;
		}
		if (o + 4 >= size)
			goto cut;
		dst[o++] = '\\';
		dst[o++] = 'x';
		dst[o++] = hex[*s >> 4];
		dst[o++] = hex[*s & 15];
	}
	dst[o] = '\0';
	return dst;
cut:
	if (size < 4) {
		dst[0] = '\0';
		return dst;
	}
	if (o > size - 4)
		o = size - 4;
	memcpy(dst + o, "...", 3);
	dst[o + 3] = '\0';
	return dst;
}

/* Writes one free-form line if level is enabled. */
void
pv_log_msg(enum pv_log_level level, const char *fmt, ...)
{
	char line[1024], safe[1024];
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	if (vsnprintf(line, sizeof(line), fmt, ap) < 0)
		line[0] = '\0';
	va_end(ap);
	fprintf(stderr, "%s %s %s\n", log_prog, level_names[level],
	    pv_log_escape(safe, sizeof(safe), line));
}

/* Writes the one line that describes a finished request. */
void
pv_log_request(const char *request_id, const char *method, const char *path,
    int status, double ms, const struct pv_err *err)
{
	char p[256], m[16], msg[320];

	pv_log_escape(p, sizeof(p), path != NULL ? path : "-");
	pv_log_escape(m, sizeof(m), method != NULL ? method : "-");
	if (err == NULL || err->code == PV_OK) {
		fprintf(stderr, "%s %s %s %s %d %.2fms\n", log_prog, request_id,
		    m, p, status, ms);
		return;
	}
	fprintf(stderr, "%s %s %s %s %d %.2fms %s %s:%d \"%s\"\n", log_prog,
	    request_id, m, p, status, ms, pv_err_name(err->code),
	    err->file != NULL ? err->file : "?", err->line,
	    pv_log_escape(msg, sizeof(msg), err->msg));
}
