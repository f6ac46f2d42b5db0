/* bin/pivotactl.c: the operator's command line.  Logic: lib/pv_ctl.c. */
#include "pv_ctl.h"

int
main(int argc, char **argv)
{
	return pv_ctl_main(argc, argv);
}
