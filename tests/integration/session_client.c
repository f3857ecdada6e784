/*
 * session_client: a small provisioning-session client for tests (docs/protocol.md). It builds
 * AgentMessages, POSTs them to /agent/v1/session over mutual TLS and prints what the service
 * answered, so a test script can drive a session step by step without the agent:
 *
 *   session_client report UID OUT            an AgentMessage: version 1, a status report for UID
 *   session_client results SESSION OUT ID... an AgentMessage of the session with one ok result per
 *                                            request ID (ID:fail:CODE for a failed one)
 *   session_client post URL CA CERT KEY CONTENT-TYPE IN OUT
 *                                            POSTs the file IN; prints the HTTP status and writes
 *                                            the reply body to OUT. CERT and KEY "-": no client
 *                                            certificate.
 *   session_client dump IN                   prints a ServiceMessage: "session ID", "done 0|1",
 *                                            "crl BYTES", then one line per request:
 *                                            "request ID ENDPOINT OPERATION LABEL [NAME=VALUE]"
 *                                            (and " rekey" when the request asks for a new key)
 *
 * Exit status 0 on success, 1 on failure (a message on stderr), 2 on a bad command line.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>

#include "agent_session.pb-c.h"

enum {
    FILE_MAX = 4 * 1024 * 1024,
    RESULTS_MAX = 64,
};

static int usage(void)
{
    fprintf(stderr, "usage: session_client report UID OUT [FIRMWARE [SESSION ID...]]\n"
                    "       session_client results SESSION OUT ID[:fail:CODE]...\n"
                    "       session_client post URL CA CERT KEY CONTENT-TYPE IN OUT\n"
                    "       session_client dump IN\n");
    return 2;
}

/* Reads a whole file of at most FILE_MAX bytes through a file BIO. */
static int read_file(const char *path, uint8_t **data, size_t *len)
{
    BIO *in = BIO_new_file(path, "rb");
    BIO *mem = BIO_new(BIO_s_mem());
    uint8_t buf[4096];
    int n = 0, rv = -1;

    *data = NULL;
    *len = 0;
    if (in == NULL || mem == NULL) {
        fprintf(stderr, "session_client: cannot open %s\n", path);
        goto done;
    }
    while ((n = BIO_read(in, buf, sizeof buf)) > 0) {
        if (BIO_write(mem, buf, n) != n || BIO_pending(mem) > FILE_MAX) {
            fprintf(stderr, "session_client: %s is too large\n", path);
            goto done;
        }
    }
    char *p = NULL;
    long got = BIO_get_mem_data(mem, &p);
    *data = OPENSSL_malloc(got > 0 ? (size_t)got : 1);
    if (*data == NULL) {
        goto done;
    }
    if (got > 0) {
        memcpy(*data, p, (size_t)got);
    }
    *len = got > 0 ? (size_t)got : 0;
    rv = 0;
done:
    BIO_free(in);
    BIO_free(mem);
    return rv;
}

static int write_file(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    int ok = f != NULL && (len == 0 || fwrite(data, 1, len, f) == len);
    if (f != NULL && fclose(f) != 0) {
        ok = 0;
    }
    if (!ok) {
        fprintf(stderr, "session_client: cannot write %s\n", path);
    }
    return ok ? 0 : -1;
}

static int pack_write(const Tessera__Agent__V1__AgentMessage *m, const char *out)
{
    size_t len = tessera__agent__v1__agent_message__get_packed_size(m);
    uint8_t *buf = OPENSSL_malloc(len > 0 ? len : 1);
    if (buf == NULL) {
        return 1;
    }
    tessera__agent__v1__agent_message__pack(m, buf);
    int rv = write_file(out, buf, len);
    OPENSSL_free(buf);
    return rv == 0 ? 0 : 1;
}

/* A status report; with a firmware, and then a session and request ids, answering those too. */
static int cmd_report(int argc, char **argv)
{
    Tessera__Agent__V1__Result res[RESULTS_MAX];
    Tessera__Agent__V1__Result *ptrs[RESULTS_MAX];
    int n = argc > 4 ? argc - 4 : 0;
    Tessera__Agent__V1__AgentMessage m;
    Tessera__Agent__V1__StatusReport s;
    Tessera__Agent__V1__KeystoreObject o;
    Tessera__Agent__V1__KeystoreObject *objects[1] = {&o};
    char *features[] = {"import", "counter"};

    tessera__agent__v1__agent_message__init(&m);
    tessera__agent__v1__status_report__init(&s);
    tessera__agent__v1__keystore_object__init(&o);
    o.label = "identity";
    o.kind = "key";
    o.algorithm = "P-256";
    s.uid = argv[0];
    s.agent_version = "session-client 1";
    s.firmware_version = argc > 2 ? argv[2] : "test-fw 2.1";
    s.keystore_objects = objects;
    s.n_keystore_objects = 1;
    s.keystore_features = features;
    s.n_keystore_features = 2;
    s.datastore_generation = 3;
    s.datastore_format_version = 1;
    s.cert_not_after = 1900000000;
    m.version = 1;
    m.status = &s;
    if (n > RESULTS_MAX) {
        return usage();
    }
    if (argc > 3) {
        m.session_id = argv[3];
    }
    for (int i = 0; i < n; i++) {
        tessera__agent__v1__result__init(&res[i]);
        res[i].request_id = strtoull(argv[4 + i], NULL, 10);
        res[i].ok = 1;
        ptrs[i] = &res[i];
    }
    m.results = ptrs;
    m.n_results = (size_t)n;
    return pack_write(&m, argv[1]);
}

static int cmd_results(int argc, char **argv)
{
    Tessera__Agent__V1__AgentMessage m;
    Tessera__Agent__V1__Result res[RESULTS_MAX];
    Tessera__Agent__V1__Result *ptrs[RESULTS_MAX];
    char codes[RESULTS_MAX][64];
    int n = argc - 2;

    if (n < 0 || n > RESULTS_MAX) {
        return usage();
    }
    tessera__agent__v1__agent_message__init(&m);
    m.version = 1;
    m.session_id = argv[0];
    for (int i = 0; i < n; i++) {
        const char *arg = argv[2 + i];
        char *end = NULL;
        tessera__agent__v1__result__init(&res[i]);
        res[i].request_id = strtoull(arg, &end, 10);
        res[i].ok = 1;
        if (end == arg || (*end != '\0' && strncmp(end, ":fail:", 6) != 0)) {
            return usage();
        }
        if (*end != '\0') {
            snprintf(codes[i], sizeof codes[i], "%s", end + 6);
            res[i].ok = 0;
            res[i].error_code = codes[i];
            res[i].error_message = "refused by the test";
        }
        ptrs[i] = &res[i];
    }
    m.results = ptrs;
    m.n_results = (size_t)n;
    return pack_write(&m, argv[1]);
}

static size_t collect(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    BIO *mem = userdata;
    size_t n = size * nmemb;
    if (BIO_pending(mem) + n > FILE_MAX || BIO_write(mem, ptr, (int)n) != (int)n) {
        return 0;
    }
    return n;
}

static int cmd_post(char **argv)
{
    const char *url = argv[0], *ca = argv[1], *cert = argv[2], *key = argv[3];
    char ctype[256];
    uint8_t *body = NULL;
    size_t len = 0;
    long code = 0;
    int rv = 1;
    BIO *mem = BIO_new(BIO_s_mem());
    CURL *c = curl_easy_init();
    struct curl_slist *hdrs = NULL;

    snprintf(ctype, sizeof ctype, "Content-Type: %s", argv[4]);
    hdrs = curl_slist_append(NULL, ctype);
    if (mem == NULL || c == NULL || hdrs == NULL || read_file(argv[5], &body, &len) != 0) {
        goto done;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    if (strcmp(cert, "-") != 0) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, cert);
        curl_easy_setopt(c, CURLOPT_SSLKEY, key);
    }
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
    CURLcode res = curl_easy_perform(c);
    if (res != CURLE_OK) {
        fprintf(stderr, "session_client: POST %s: %s\n", url, curl_easy_strerror(res));
        goto done;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    char *p = NULL;
    long got = BIO_get_mem_data(mem, &p);
    if (write_file(argv[6], (const uint8_t *)p, got > 0 ? (size_t)got : 0) != 0) {
        goto done;
    }
    printf("%ld\n", code);
    rv = 0;
done:
    OPENSSL_free(body);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    BIO_free(mem);
    return rv;
}

static int cmd_dump(const char *in)
{
    uint8_t *data = NULL;
    size_t len = 0;

    if (read_file(in, &data, &len) != 0) {
        return 1;
    }
    Tessera__Agent__V1__ServiceMessage *m =
        tessera__agent__v1__service_message__unpack(NULL, len, data);
    OPENSSL_free(data);
    if (m == NULL) {
        fprintf(stderr, "session_client: %s is not a ServiceMessage\n", in);
        return 1;
    }
    printf("version %u\nsession %s\ndone %d\ncrl %zu\n", m->version, m->session_id, (int)m->done,
           m->crl.len);
    for (size_t i = 0; i < m->n_requests; i++) {
        const Tessera__Agent__V1__Request *q = m->requests[i];
        const ProtobufCEnumValue *op = protobuf_c_enum_descriptor_get_value(
            &tessera__agent__v1__operation__descriptor, (int)q->operation);
        const ProtobufCEnumValue *ep = protobuf_c_enum_descriptor_get_value(
            &tessera__agent__v1__endpoint__descriptor, (int)q->endpoint);
        printf("request %" PRIu64 " %s %s %s", q->id, ep != NULL ? ep->name : "?",
               op != NULL ? op->name : "?", q->label[0] != '\0' ? q->label : "-");
        for (size_t j = 0; j < q->n_entries; j++) {
            printf(" %s=%.*s", q->entries[j]->name, (int)q->entries[j]->value.len,
                   (const char *)q->entries[j]->value.data);
        }
        printf("%s\n", q->rekey ? " rekey" : "");
    }
    tessera__agent__v1__service_message__free_unpacked(m, NULL);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        return usage();
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "report") == 0 && argc >= 4) {
        return cmd_report(argc - 2, argv + 2);
    }
    if (strcmp(cmd, "results") == 0 && argc >= 4) {
        return cmd_results(argc - 2, argv + 2);
    }
    if (strcmp(cmd, "post") == 0 && argc == 9) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        int rv = cmd_post(argv + 2);
        curl_global_cleanup();
        return rv;
    }
    if (strcmp(cmd, "dump") == 0 && argc == 3) {
        return cmd_dump(argv[2]);
    }
    return usage();
}
