/* bin/pivota-worker.c: the job worker.  Logic: lib/pv_worker.c. */
#include "pv_worker.h"

int
main(int argc, char **argv)
{
	return pv_worker_main(argc, argv);
}
