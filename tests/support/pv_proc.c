/* Running helper commands from tests.  See pv_proc.h. */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pv_proc.h"

int
pv_proc_run(const char *const argv[])
{
	return pv_proc_capture(argv, NULL, 0);
}

int
pv_proc_capture(const char *const argv[], char *out, size_t size)
{
	char *const *av;
	size_t len = 0;
	ssize_t n;
	pid_t pid;
	int st, fd[2] = { -1, -1 };

	/* execvp takes char *const[] for history's sake; it writes none. */
	memcpy(&av, &argv, sizeof av);

	fflush(NULL);
	if (out != NULL && pipe(fd) == -1)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (out != NULL) {
			dup2(fd[1], 1);
			close(fd[0]);
			close(fd[1]);
		}
		execvp(av[0], av);
		_exit(127);
	}
	if (out != NULL) {
		close(fd[1]);
		while (size > 0 &&
		    (n = read(fd[0], out + len, size - 1 - len)) > 0)
			len += (size_t)n;
		if (size > 0)
			out[len] = '\0';
		close(fd[0]);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

int
pv_proc_ctl(char *out, size_t size, ...)
{
	const char *dir = getenv("PV_BUILD_DIR"), *argv[16];
	char path[512];
	va_list ap;
	int n = 1;

	if (dir == NULL ||
	    snprintf(path, sizeof(path), "%s/bin/pivotactl", dir) < 0)
		return -1;
	argv[0] = path;
	va_start(ap, size);
	while (n < 15 && (argv[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	return pv_proc_capture(argv, out, size);
}

int
pv_proc_worker_once(const char *id)
{
	const char *dir = getenv("PV_BUILD_DIR");
	char path[512];
	const char *argv[] = { path, "--once", "--id", id, "--backoff-base",
		"1", "--backoff-cap", "1", NULL };
	int n;

	if (dir == NULL ||
	    (n = snprintf(path, sizeof(path), "%s/bin/pivota-worker", dir)) <
	        0 ||
	    (size_t)n >= sizeof(path))
		return -1;
	return pv_proc_run(argv);
}
