/* tessera-agent init, claim, enroll, reenroll, status. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "agent/agent_conn.h"
#include "agent_cli/agent_cli.h"
#include "common/error_internal.h"
#include "common/file_internal.h"
#include "tessera/datastore.h"

enum { CLAIM_FILE_MAX = 1024 };

static int open_agent(const agent_args *args, ts_agent **agent)
{
    if (ts_agent_open(args->keystore, args->state, agent) != TS_OK) {
        return agent_fail();
    }
    return AGENT_EXIT_OK;
}

int agent_cmd_init(const agent_args *args)
{
    char uid[TS_AGENT_UID_MAX + 1];
    ts_agent *agent = NULL;
    int created = 0;
    int status = open_agent(args, &agent);

    if (status != AGENT_EXIT_OK) {
        return status;
    }
    if (ts_agent_init(agent, args->uid, uid, &created) != TS_OK) {
        status = agent_fail();
    } else {
        if (!created) {
            fprintf(stderr, "tessera-agent: the identity key and UID exist already\n");
        }
        printf("%s\n", uid);
    }
    ts_agent_free(agent);
    return status;
}

/* Reads at most CLAIM_FILE_MAX bytes of FILE, or of standard input for "-". */
static ts_err read_claim(const char *path, uint8_t **data, size_t *len)
{
    if (strcmp(path, "-") != 0) {
        ts_err rv = ts_file_read(path, CLAIM_FILE_MAX, data, len);
        return rv != TS_OK ? ts_error_prefix(rv, "claim code file") : TS_OK;
    }
    *data = OPENSSL_zalloc(CLAIM_FILE_MAX + 1);
    if (*data == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory");
    }
    *len = fread(*data, 1, CLAIM_FILE_MAX + 1, stdin);
    if (ferror(stdin) || *len > CLAIM_FILE_MAX) {
        OPENSSL_clear_free(*data, CLAIM_FILE_MAX + 1);
        *data = NULL;
        return ts_error_set(TS_ERR_INVALID,
                            "the claim code on standard input is unreadable or "
                            "over %d bytes",
                            CLAIM_FILE_MAX);
    }
    return TS_OK;
}

int agent_cmd_claim(const agent_args *args)
{
    const char *verb = args->operand_count > 0 ? args->operands[0] : "";
    ts_agent *agent = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    int status;

    if (strcmp(verb, "inject") == 0) {
        if (args->operand_count != 2) {
            return agent_usage("claim inject takes one FILE");
        }
        /* Read first: a missing file must not cost a key-store login. */
        if (read_claim(args->operands[1], &data, &len) != TS_OK) {
            return agent_fail();
        }
    } else if (strcmp(verb, "delete") == 0) {
        if (args->operand_count != 1) {
            return agent_usage("claim delete takes no operand");
        }
    } else {
        return agent_usage("claim needs 'inject FILE' or 'delete'");
    }
    status = open_agent(args, &agent);
    if (status == AGENT_EXIT_OK) {
        ts_err rv = data != NULL ? ts_agent_claim_inject(agent, (const char *)data, len)
                                 : ts_agent_claim_delete(agent);
        if (rv != TS_OK) {
            status = agent_fail();
        } else {
            printf("claim code %s\n", data != NULL ? "stored" : "deleted");
        }
    }
    if (data != NULL) {
        OPENSSL_clear_free(data, strcmp(args->operands[1], "-") == 0 ? CLAIM_FILE_MAX + 1 : len);
    }
    ts_agent_free(agent);
    return status;
}

static void print_time(const char *name, time_t t)
{
    char buf[32];
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(buf, sizeof buf, "?");
    }
    printf("%-12s%s\n", name, buf);
}

static void print_status(const ts_agent_status *st, int chain_checked)
{
    printf("%-12s%s\n", "uid:", st->uid);
    printf("%-12s%s\n", "claim code:", st->claim_code ? "stored" : "none");
    if (!st->enrolled) {
        printf("%-12s%s\n", "identity:", "not enrolled");
        return;
    }
    printf("%-12s%llu\n", "generation:", (unsigned long long)st->generation);
    printf("%-12s%s\n", "key:", st->key);
    printf("%-12s%s\n", "cert:", st->cert);
    printf("%-12s%s\n", "chain:", st->chain);
    printf("%-12s%s\n", "subject:", st->subject);
    printf("%-12s%s\n", "issuer:", st->issuer);
    printf("%-12s%s\n", "serial:", st->serial);
    print_time("not before:", st->not_before);
    print_time("not after:", st->not_after);
    if (chain_checked) {
        printf("%-12s%s\n", "trust:", st->chain_verified ? "verified" : "NOT verified");
    }
}

static int est_command(const agent_args *args, int re)
{
    const char *name = re ? "reenroll" : "enroll";
    ts_agent *agent = NULL;
    ts_agent_est_opts est = args->est;
    ts_agent_status st;
    agent_conn conn;
    int renewed = 1;
    int status;

    if (re && args->est.factory_cert != NULL) {
        return agent_usage("reenroll uses the current certificate, not --factory-cert");
    }
    if (!re && args->est.rekey) {
        return agent_usage("--rekey is for reenroll; enroll certifies the current key");
    }
    status = open_agent(args, &agent);
    if (status != AGENT_EXIT_OK) {
        return status;
    }
    if (agent_conn_resolve(agent, args->state, args->est.server, args->est.trust_file, &conn) !=
        TS_OK) {
        ts_agent_free(agent);
        return agent_fail();
    }
    if (conn.server == NULL) {
        status = agent_usage("%s needs the service URL: give --server URL, or set %s in the "
                             "datastore",
                             name, TS_DS_SERVER_URL);
    } else if (conn.trust_file == NULL) {
        status = agent_usage("%s needs the trust roots: give --trust FILE, or set %s in the "
                             "datastore",
                             name, TS_DS_TRUST_ROOTS);
    }
    if (status != AGENT_EXIT_OK) {
        agent_conn_clear(&conn);
        ts_agent_free(agent);
        return status;
    }
    est.server = conn.server;
    est.trust_file = conn.trust_file;
    /* The option, else the datastore's reenroll.threshold_days, else the default. */
    unsigned threshold = args->threshold_days != 0  ? args->threshold_days
                         : conn.threshold_days != 0 ? conn.threshold_days
                                                    : (unsigned)TS_AGENT_THRESHOLD_DEFAULT;
    ts_err rv = re ? ts_agent_reenroll(agent, &est, threshold, args->force, &renewed)
                   : ts_agent_enroll(agent, &est);
    if (rv != TS_OK) {
        status = agent_fail();
    } else if (!renewed) {
        printf("not due: the certificate is good for more than %u days\n", threshold);
    } else if (ts_agent_status_get(agent, est.trust_file, &st) != TS_OK) {
        status = agent_fail();
    } else {
        printf("%s\n",
               re ? (est.rekey ? "re-enrolled with a new key" : "re-enrolled") : "enrolled");
        print_status(&st, 1);
    }
    agent_conn_clear(&conn);
    ts_agent_free(agent);
    return status;
}

int agent_cmd_enroll(const agent_args *args)
{
    return est_command(args, 0);
}

int agent_cmd_reenroll(const agent_args *args)
{
    return est_command(args, 1);
}

int agent_cmd_status(const agent_args *args)
{
    ts_agent *agent = NULL;
    ts_agent_status st;
    agent_conn conn;
    int status = open_agent(args, &agent);

    if (status != AGENT_EXIT_OK) {
        return status;
    }
    /* The roots to check against: --trust, else the datastore's; with neither, no chain check. */
    if (agent_conn_resolve(agent, args->state, "", args->est.trust_file, &conn) != TS_OK) {
        ts_agent_free(agent);
        return agent_fail();
    }
    if (ts_agent_status_get(agent, conn.trust_file, &st) != TS_OK) {
        status = agent_fail();
    } else {
        print_status(&st, conn.trust_file != NULL);
        if (!st.enrolled) {
            fprintf(stderr, "tessera-agent: the device is not enrolled\n");
            status = AGENT_EXIT_FAIL;
        }
    }
    agent_conn_clear(&conn);
    ts_agent_free(agent);
    return status;
}
