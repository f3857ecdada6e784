/*
 * result_tool: answers a signed command as a device would, for test_commands.sh.
 *
 *   result_tool KEY CERT ROOTS ENVELOPE STATUS TEXT [UID]
 *       verifies the command envelope (DER file) for the device of CERT against the PEM ROOTS,
 *       then writes a result signed with KEY (PEM private key) and CERT to standard output (DER):
 *       STATUS "done" puts TEXT in the output, "failed" or "refused" in the error. UID, when
 *       given, is the uid the result claims (a device answering for another).
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
    fprintf(stderr, "result_tool: %s: %s\n", what, ts_error_message());
    return 1;
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = malloc(TS_COMMAND_ENVELOPE_MAX);
    *len = 0;
    if (f == NULL || buf == NULL) {
        if (f != NULL) {
            fclose(f);
        }
        free(buf);
        return NULL;
    }
    *len = fread(buf, 1, TS_COMMAND_ENVELOPE_MAX, f);
    fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    if (argc != 7 && argc != 8) {
        fprintf(stderr, "usage: result_tool KEY CERT ROOTS ENVELOPE STATUS TEXT [UID]\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    EVP_PKEY *key = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f != NULL) {
        fclose(f);
    }
    f = fopen(argv[2], "r");
    X509 *cert = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f != NULL) {
        fclose(f);
    }
    X509_STORE *roots = X509_STORE_new();
    if (key == NULL || cert == NULL || roots == NULL || X509_STORE_load_file(roots, argv[3]) != 1) {
        fprintf(stderr, "result_tool: cannot read the key, certificate or roots\n");
        return 1;
    }
    char uid[TS_COMMAND_UID_MAX + 1] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, uid, sizeof uid);
    size_t len = 0;
    unsigned char *env = read_all(argv[4], &len);
    ts_command cmd;
    if (env == NULL || ts_command_verify(env, len, roots, cert, uid, time(NULL), &cmd) != TS_OK) {
        return die("the envelope");
    }
    ts_command_result r;
    memset(&r, 0, sizeof r);
    snprintf(r.id, sizeof r.id, "%s", cmd.id);
    snprintf(r.tenant, sizeof r.tenant, "%s", cmd.tenant);
    snprintf(r.uid, sizeof r.uid, "%s", argc == 8 ? argv[7] : uid);
    r.seq = cmd.seq;
    r.time = (int64_t)time(NULL);
    if (ts_command_status_parse(argv[5], &r.status) != TS_OK) {
        return die("the status");
    }
    snprintf(r.status == TS_COMMAND_DONE ? r.output : r.error,
             r.status == TS_COMMAND_DONE ? sizeof r.output : sizeof r.error, "%s", argv[6]);
    unsigned char *der = NULL;
    size_t der_len = 0;
    if (ts_command_result_sign(&r, key, cert, NULL, &der, &der_len) != TS_OK) {
        return die("signing the result");
    }
    fwrite(der, 1, der_len, stdout);
    OPENSSL_free(der);
    free(env);
    X509_STORE_free(roots);
    X509_free(cert);
    EVP_PKEY_free(key);
    return 0;
}
