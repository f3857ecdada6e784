/*
 * cmd_tool: signed remote commands from the command line, for test_agent_run.sh.
 *
 *   cmd_tool sign KEY CERT CHAIN TENANT UID SEQ ID NAME [ARG...]
 *       writes the signed envelope (DER) to standard output. KEY is a PEM private key, CERT its
 *       certificate, CHAIN a PEM file of its chain ("-" for none). Environment: CMD_EXPIRES_IN
 *       (seconds from now, default 300; negative for an envelope already expired, issued an hour
 *       before), CMD_TAMPER=1 (change the signed content after signing: a forgery).
 *   cmd_tool result ROOTS
 *       reads one result per line as hexadecimal (mosquitto_sub -F %x) from standard input,
 *       verifies each against the PEM roots and prints "ID SEQ STATUS ERROR" (ID "-" when empty).
 *
 * Exit status 0 on success, 1 with the library's message on stderr otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tessera/command.h"

static int die(const char *what)
{
    fprintf(stderr, "cmd_tool: %s: %s\n", what, ts_error_message());
    return 1;
}

static STACK_OF(X509) * read_certs(const char *path)
{
    STACK_OF(X509) *certs = sk_X509_new_null();
    FILE *f = fopen(path, "r");
    X509 *x;

    if (f == NULL || certs == NULL) {
        if (f != NULL) {
            fclose(f);
        }
        sk_X509_free(certs);
        return NULL;
    }
    while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        sk_X509_push(certs, x);
    }
    fclose(f);
    return certs;
}

static int sign(int argc, char **argv)
{
    ts_command cmd;
    EVP_PKEY *key = NULL;
    STACK_OF(X509) *certs = NULL, *chain = NULL;
    unsigned char *der = NULL;
    size_t der_len = 0;
    const char *exp_env = getenv("CMD_EXPIRES_IN"), *tamper = getenv("CMD_TAMPER");
    long expires_in = exp_env != NULL ? strtol(exp_env, NULL, 10) : 300;
    time_t now = time(NULL);
    FILE *f;
    int rc = 1;

    if (argc < 10) {
        fprintf(stderr, "usage: cmd_tool sign KEY CERT CHAIN TENANT UID SEQ ID NAME [ARG...]\n");
        return 2;
    }
    f = fopen(argv[2], "r");
    key = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f != NULL) {
        fclose(f);
    }
    certs = read_certs(argv[3]);
    chain = strcmp(argv[4], "-") != 0 ? read_certs(argv[4]) : NULL;
    if (key == NULL || certs == NULL || sk_X509_num(certs) < 1 ||
        (strcmp(argv[4], "-") != 0 && chain == NULL)) {
        fprintf(stderr, "cmd_tool: cannot read the key, certificate or chain\n");
        goto done;
    }
    memset(&cmd, 0, sizeof cmd);
    snprintf(cmd.tenant, sizeof cmd.tenant, "%s", argv[5]);
    snprintf(cmd.uid, sizeof cmd.uid, "%s", argv[6]);
    cmd.seq = strtoull(argv[7], NULL, 10);
    snprintf(cmd.id, sizeof cmd.id, "%s", argv[8]);
    snprintf(cmd.name, sizeof cmd.name, "%s", argv[9]);
    if (expires_in < 0) {
        cmd.issued = (int64_t)now - 3600;
        cmd.expires = (int64_t)now + expires_in;
    } else {
        cmd.issued = (int64_t)now;
        cmd.expires = (int64_t)now + expires_in;
    }
    if (ts_command_args_from_argv(argc - 10, (const char *const *)argv + 10, cmd.args) != TS_OK) {
        rc = die("arguments");
        goto done;
    }
    if (ts_command_sign(&cmd, key, sk_X509_value(certs, 0), chain, &der, &der_len) != TS_OK) {
        rc = die("sign");
        goto done;
    }
    if (tamper != NULL && strcmp(tamper, "1") == 0) {
        /* Change the command's name inside the signed content: "ping" becomes "qing". */
        static const char needle[] = "\"name\":\"";
        size_t n = strlen(needle);
        int changed = 0;
        for (size_t i = 0; i + n < der_len; i++) {
            if (memcmp(der + i, needle, n) == 0) {
                der[i + n]++;
                changed = 1;
                break;
            }
        }
        if (!changed) {
            fprintf(stderr, "cmd_tool: the content was not found to tamper with\n");
            goto done;
        }
    }
    rc = fwrite(der, 1, der_len, stdout) == der_len ? 0 : 1;
done:
    OPENSSL_free(der);
    EVP_PKEY_free(key);
    sk_X509_pop_free(certs, X509_free);
    sk_X509_pop_free(chain, X509_free);
    return rc;
}

static int result(int argc, char **argv)
{
    STACK_OF(X509) *roots = NULL;
    X509_STORE *store = X509_STORE_new();
    static char line[2 * TS_COMMAND_ENVELOPE_MAX + 4];
    static unsigned char der[TS_COMMAND_ENVELOPE_MAX];
    int rc = 0;

    if (argc != 3) {
        fprintf(stderr, "usage: cmd_tool result ROOTS\n");
        return 2;
    }
    roots = read_certs(argv[2]);
    if (roots == NULL || store == NULL || sk_X509_num(roots) < 1) {
        fprintf(stderr, "cmd_tool: cannot read the roots\n");
        return 1;
    }
    for (int i = 0; i < sk_X509_num(roots); i++) {
        X509_STORE_add_cert(store, sk_X509_value(roots, i));
    }
    while (fgets(line, sizeof line, stdin) != NULL) {
        size_t len = strcspn(line, "\r\n"), n = 0;
        ts_command_result r;
        X509 *signer = NULL;
        if (len == 0) {
            continue;
        }
        for (size_t i = 0; i + 1 < len && n < sizeof der; i += 2) {
            unsigned int b;
            if (sscanf(line + i, "%2x", &b) != 1) {
                break;
            }
            der[n++] = (unsigned char)b;
        }
        if (ts_command_result_verify(der, n, store, time(NULL), &r, &signer) != TS_OK) {
            printf("unverified %s\n", ts_error_message());
            rc = 1;
            continue;
        }
        X509_free(signer);
        printf("%s %llu %s %s\n", r.id[0] != '\0' ? r.id : "-", (unsigned long long)r.seq,
               ts_command_status_name(r.status), r.status == TS_COMMAND_DONE ? r.output : r.error);
        fflush(stdout);
    }
    X509_STORE_free(store);
    sk_X509_pop_free(roots, X509_free);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "sign") == 0) {
        return sign(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "result") == 0) {
        return result(argc, argv);
    }
    fprintf(stderr, "usage: cmd_tool sign ... | cmd_tool result ROOTS\n");
    return 2;
}
