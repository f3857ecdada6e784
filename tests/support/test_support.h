/* Shared by the tests: temporary directories and SoftHSM2 tokens of their own. */
#ifndef TS_TEST_SUPPORT_H
#define TS_TEST_SUPPORT_H

#include <stddef.h>

/* Makes a fresh directory under $TMPDIR (or /tmp) and writes its path to dir. 0 on success. */
int ts_test_tmpdir(char *dir, size_t size);

/* Removes a directory tree made by ts_test_tmpdir(). */
void ts_test_rmtree(const char *dir);

/*
 * Points SOFTHSM2_CONF at a new configuration whose token directory is under dir, so the test
 * has SoftHSM2 to itself. 0 on success.
 */
int ts_test_softhsm_setup(const char *dir);

#endif
