#ifndef PV_CTL_H
#define PV_CTL_H

/*
 * pivotactl: the operator's command line (API.md §6).  Each command is
 * a row in one table with its usage line; every command prints human
 * text by default and JSON with --json.  Exit status: 0 done, 1 the
 * command failed, 2 bad usage.
 */
int pv_ctl_main(int argc, char **argv);

#endif /* PV_CTL_H */
