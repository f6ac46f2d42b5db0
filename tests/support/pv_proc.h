#ifndef PV_PROC_H
#define PV_PROC_H

#include <stddef.h>

/*
 * Running helper commands from tests (the lint bans system()): no
 * shell, the child's output goes where the test's goes.
 */

/*
 * Run ARGV[0] (searched in PATH) with ARGV and wait for it.  Returns
 * its exit status, 128 + the signal number if a signal ended it, or -1
 * if it could not be started.
 */
int pv_proc_run(const char *const argv[]);

/*
 * Like pv_proc_run() but captures standard output into out (at most
 * size - 1 bytes, NUL-terminated; the rest is discarded).
 */
int pv_proc_capture(const char *const argv[], char *out, size_t size);

/*
 * Runs $PV_BUILD_DIR/bin/pivotactl with the NULL-terminated arguments
 * (at most 14); returns its exit status, -1 if it could not run, with
 * standard output in out as pv_proc_capture() does.
 */
int pv_proc_ctl(char *out, size_t size, ...);

/*
 * Runs $PV_BUILD_DIR/bin/pivota-worker --once as worker id, with
 * retries due at once (backoff 1 ms): the jobs that are due, then it
 * exits, as cron would run it.  Returns its exit status, -1 if it
 * could not run.
 */
int pv_proc_worker_once(const char *id);

#endif /* PV_PROC_H */
