/* Running helper commands from tests.  See pv_proc.h. */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pv_proc.h"

int
pv_proc_run(const char *const argv[])
{
	char *const *av;
	pid_t pid;
	int st;

	/* execvp takes char *const[] for history's sake; it writes none. */
	memcpy(&av, &argv, sizeof av);

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execvp(av[0], av);
		_exit(127);
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
