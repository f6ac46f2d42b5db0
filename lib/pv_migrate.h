#ifndef PV_MIGRATE_H
#define PV_MIGRATE_H

#include <stdio.h>

#include "pv_http.h"

/*
 * Schema migrations: migrations/NNNN_description.sql, applied in order,
 * each in its own transaction together with its row in
 * schema_migrations (version, name, SHA-256 checksum).  A migration
 * whose file changed after it was applied stops the run: migrations
 * are never edited after merge.  A session advisory lock makes
 * concurrent runs (two nodes starting at once) wait for each other.
 */

/*
 * Applies every pending migration found in dir, reporting each to out
 * (may be NULL).  *applied counts the new ones.  Returns 0, or -1 with
 * PV_E_INVALID (bad file name, edited migration, unreadable dir) or a
 * database error, the failing migration rolled back.
 */
int pv_migrate_run(struct pv_ctx *ctx, const char *dir, FILE *out, int *applied,
    struct pv_err *err);

#endif /* PV_MIGRATE_H */
