/*
 * Running the Python fakes of tests/fakes/ from C tests.  See pv_fake.h.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pv_fake.h"
#include "pv_httpc.h"

#define MAX_ARGS 32
#define START_MS 10000 /* a cold python3 can be slow on a busy box */
#define STOP_MS  3000

struct pv_fake {
	pid_t pid;    /* the python3 process */
	char url[64]; /* http://127.0.0.1:PORT */
	char *script; /* for messages */
};

/* Debian's python3 unless PV_PYTHON names another. */
static const char *
python(void)
{
	const char *p = getenv("PV_PYTHON");

	if (p != NULL && *p != '\0')
		return p;
	return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" :
	                                               "python3";
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Reads the port line the fake prints once it listens. */
static int
read_port(int fd, int *port)
{
	char buf[32];
	size_t len = 0;
	struct pollfd pfd = { fd, POLLIN, 0 };
	ssize_t n;
	char *end;
	long v;

	while (len < sizeof(buf) - 1 && memchr(buf, '\n', len) == NULL) {
		if (poll(&pfd, 1, START_MS) <= 0)
			return -1;
		if ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) <= 0)
			return -1;
		len += (size_t)n;
	}
	buf[len] = '\0';
	v = strtol(buf, &end, 10);
	if (end == buf || v <= 0 || v > 65535)
		return -1;
	*port = (int)v;
	return 0;
}

struct pv_fake *
pv_fake_start(const char *script, const char *const *args)
{
	const char *argv[MAX_ARGS + 8];
	struct pv_fake *f;
	const char *const *cav = argv;
	struct json_object *o;
	int fd[2], port, n = 0, i;
	char *const *av;

	if ((f = calloc(1, sizeof(*f))) == NULL ||
	    (f->script = strdup(script)) == NULL)
		abort();
	argv[n++] = python();
	argv[n++] = script;
	argv[n++] = "--port";
	argv[n++] = "0";
	argv[n++] = "--exit-with-parent";
	for (i = 0; args != NULL && args[i] != NULL && i < MAX_ARGS; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (pipe(fd) == -1) {
		perror("pv_fake: pipe");
		goto fail;
	}
	fflush(NULL);
	if ((f->pid = fork()) == -1) {
		perror("pv_fake: fork");
		close(fd[0]);
		close(fd[1]);
		goto fail;
	}
	if (f->pid == 0) {
		dup2(fd[1], 1);
		close(fd[0]);
		close(fd[1]);
		/* execvp takes char *const[] for history's sake. */
		memcpy(&av, &cav, sizeof(av));
		execvp(av[0], av);
		_exit(127);
	}
	close(fd[1]);
	i = read_port(fd[0], &port);
	close(fd[0]);
	if (i == -1) {
		fprintf(stderr, "pv_fake: %s did not start (%s)\n", script,
		    argv[0]);
		goto fail;
	}
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d", port);
	for (i = 0; i < 100; i++) {
		if ((o = pv_fake_call(f, "GET", "/__fake/health", NULL)) !=
		    NULL) {
			json_object_put(o);
			return f;
		}
		sleep_ms(20);
	}
	fprintf(stderr, "pv_fake: %s does not answer at %s\n", script, f->url);
fail:
	pv_fake_stop(f);
	return NULL;
}

void
pv_fake_stop(struct pv_fake *f)
{
	int st, waited;

	if (f == NULL)
		return;
	if (f->pid > 0) {
		kill(f->pid, SIGTERM);
		for (waited = 0; waitpid(f->pid, &st, WNOHANG) == 0;
		     waited += 10) {
			if (waited >= STOP_MS) {
				kill(f->pid, SIGKILL);
				waitpid(f->pid, &st, 0);
				break;
			}
			sleep_ms(10);
		}
	}
	free(f->script);
	free(f);
}

const char *
pv_fake_url(const struct pv_fake *f)
{
	return f->url;
}

struct json_object *
pv_fake_call(struct pv_fake *f, const char *method, const char *path,
    const char *body)
{
	struct pv_httpc_resp r;
	struct json_object *o = NULL;
	char *url = pv_httpc_url(f->url, path);

	if (url == NULL)
		abort();
	if (pv_httpc_request(&r, method, url, NULL, body,
	        body != NULL ? strlen(body) : 0) == -1)
		fprintf(stderr, "pv_fake: %s %s: %s\n", method, path, r.error);
	else if (r.status != 200 || (o = pv_httpc_json(&r)) == NULL)
		fprintf(stderr, "pv_fake: %s %s: HTTP %ld: %.300s\n", method,
		    path, r.status, r.body != NULL ? r.body : "");
	pv_httpc_resp_free(&r);
	free(url);
	return o;
}

int
pv_fake_do(struct pv_fake *f, const char *method, const char *path,
    const char *body)
{
	struct json_object *o = pv_fake_call(f, method, path, body);

	if (o == NULL)
		return -1;
	json_object_put(o);
	return 0;
}
