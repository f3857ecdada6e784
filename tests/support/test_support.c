/* Shared by the tests: temporary directories and SoftHSM2 tokens of their own. */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_support.h"

int ts_test_tmpdir(char *dir, size_t size)
{
    const char *base = getenv("TMPDIR");
    int n = snprintf(dir, size, "%s/tessera-test-XXXXXX", base != NULL ? base : "/tmp");
    if (n < 0 || (size_t)n >= size) {
        return -1;
    }
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void ts_test_rmtree(const char *dir)
{
    if (dir != NULL && dir[0] != '\0') {
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
}

int ts_test_softhsm_setup(const char *dir)
{
    char tokens[4096], conf[4096];
    snprintf(tokens, sizeof tokens, "%s/softhsm-tokens", dir);
    snprintf(conf, sizeof conf, "%s/softhsm2.conf", dir);
    if (mkdir(tokens, 0700) != 0) {
        return -1;
    }
    FILE *f = fopen(conf, "w");
    if (f == NULL) {
        return -1;
    }
    fprintf(f,
            "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n"
            "slots.removable = false\n",
            tokens);
    if (fclose(f) != 0) {
        return -1;
    }
    return setenv("SOFTHSM2_CONF", conf, 1);
}
