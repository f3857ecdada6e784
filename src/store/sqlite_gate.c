/* The per-file writer gate of the SQLite driver (sqlite_gate_internal.h). */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/crypto.h>

#include "common/error_internal.h"
#include "store/sqlite_gate_internal.h"

struct sqlite_gate {
    dev_t dev;
    ino_t ino;
    int users; /* connections that joined; under gates_lock */
    /* A flag rather than a held mutex: a transaction may end on another thread than the one that
     * began it, and only the owner may unlock a mutex. */
    pthread_mutex_t lock;
    pthread_cond_t released;
    int busy;
    struct sqlite_gate *next;
};

static pthread_mutex_t gates_lock = PTHREAD_MUTEX_INITIALIZER;
static sqlite_gate *gates;

/* The condition waits on the monotonic clock, so setting the wall clock moves no deadline. */
static int gate_init(sqlite_gate *g)
{
    pthread_condattr_t attr;
    int ok = pthread_condattr_init(&attr) == 0;

    ok = ok && pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
         pthread_cond_init(&g->released, &attr) == 0;
    pthread_condattr_destroy(&attr);
    if (ok && pthread_mutex_init(&g->lock, NULL) != 0) {
        pthread_cond_destroy(&g->released);
        ok = 0;
    }
    return ok;
}

ts_err sqlite_gate_join(const char *path, sqlite_gate **out)
{
    struct stat st;
    sqlite_gate *g;

    *out = NULL;
    if (stat(path, &st) != 0) {
        return ts_error_set(TS_ERR_IO, "cannot stat the database %s: %s", path, strerror(errno));
    }
    pthread_mutex_lock(&gates_lock);
    for (g = gates; g != NULL && (g->dev != st.st_dev || g->ino != st.st_ino); g = g->next) {
    }
    if (g == NULL) {
        g = OPENSSL_zalloc(sizeof *g);
        if (g != NULL && !gate_init(g)) {
            OPENSSL_free(g);
            g = NULL;
        }
        if (g != NULL) {
            g->dev = st.st_dev;
            g->ino = st.st_ino;
            g->next = gates;
            gates = g;
        }
    }
    if (g != NULL) {
        g->users++;
    }
    pthread_mutex_unlock(&gates_lock);
    if (g == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "no memory for a database connection");
    }
    *out = g;
    return TS_OK;
}

void sqlite_gate_leave(sqlite_gate *gate)
{
    if (gate == NULL) {
        return;
    }
    pthread_mutex_lock(&gates_lock);
    if (--gate->users == 0) {
        sqlite_gate **at = &gates;
        while (*at != gate) {
            at = &(*at)->next;
        }
        *at = gate->next;
        pthread_cond_destroy(&gate->released);
        pthread_mutex_destroy(&gate->lock);
        OPENSSL_free(gate);
    }
    pthread_mutex_unlock(&gates_lock);
}

ts_err sqlite_gate_enter(sqlite_gate *gate, int timeout_ms)
{
    struct timespec until;
    int rc = 0;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    /* A bounded wait: a thread that began a write on another connection to the same file and
     * then waits for this one gets the busy error SQLite would have given, not a hang. */
    pthread_mutex_lock(&gate->lock);
    while (gate->busy && rc != ETIMEDOUT) {
        rc = pthread_cond_timedwait(&gate->released, &gate->lock, &until);
    }
    int taken = !gate->busy;
    if (taken) {
        gate->busy = 1;
    }
    pthread_mutex_unlock(&gate->lock);
    if (!taken) {
        return ts_error_set(TS_ERR_CONFLICT,
                            "the database is busy: another writer of this process held it for "
                            "%d ms",
                            timeout_ms);
    }
    return TS_OK;
}

void sqlite_gate_exit(sqlite_gate *gate)
{
    pthread_mutex_lock(&gate->lock);
    gate->busy = 0;
    pthread_cond_signal(&gate->released);
    pthread_mutex_unlock(&gate->lock);
}
