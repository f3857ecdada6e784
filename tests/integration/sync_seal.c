/*
 * sync_seal: the operator's side of an end-to-end key import, for the session tests.
 *
 *   sync_seal install --keystore URI --sender-key FILE
 *       stores the public half of the PEM private key FILE in the device's key store as the
 *       tenant's provisioning key (object "provisioning.key"), as a factory would
 *   sync_seal seal --keystore URI --sender-key FILE --counter N --label L --out FILE
 *       seals a fresh P-256 key to the device's identity key and key-store UID, counter N, to be
 *       stored as L, signed by the sender key; writes the blob (DER) to --out
 *
 * Exit 0 on success, 1 on failure, 2 for bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "tessera/agent.h"
#include "tessera/keystore.h"

typedef struct opts {
    const char *keystore, *sender, *label, *out;
    unsigned long long counter;
} opts;

static int usage(void)
{
    fprintf(stderr, "usage: sync_seal install --keystore URI --sender-key FILE\n"
                    "       sync_seal seal --keystore URI --sender-key FILE --counter N "
                    "--label L --out FILE\n");
    return 2;
}

static EVP_PKEY *sender_load(const char *path)
{
    FILE *fp = fopen(path, "r");
    EVP_PKEY *key = fp != NULL ? PEM_read_PrivateKey(fp, NULL, NULL, NULL) : NULL;
    if (fp != NULL) {
        fclose(fp);
    }
    if (key == NULL) {
        fprintf(stderr, "sync_seal: cannot read the private key %s\n", path);
    }
    return key;
}

static int install(ts_keystore *ks, EVP_PKEY *sender)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    long n;
    int status = 1;

    if (bio != NULL && PEM_write_bio_PUBKEY(bio, sender) == 1) {
        n = BIO_get_mem_data(bio, &pem);
        if (ts_keystore_object_replace(ks, TS_AGENT_RTP_SENDER_LABEL, (const uint8_t *)pem,
                                       (size_t)n, 0) == TS_OK) {
            status = 0;
        }
    }
    BIO_free(bio);
    return status;
}

static int seal(ts_keystore *ks, EVP_PKEY *sender, const opts *o)
{
    uint8_t uid[TS_KEYSTORE_UID_LEN];
    EVP_PKEY *pub = NULL, *key = EVP_EC_gen("P-256");
    uint8_t *blob = NULL;
    size_t len = 0;
    FILE *fp = NULL;
    int status = 1;

    if (key != NULL && ts_keystore_uid(ks, uid) == TS_OK &&
        ts_keystore_public_key(ks, TS_AGENT_KEY_LABEL, &pub) == TS_OK &&
        ts_keystore_import_seal(sender, pub, uid, TS_AGENT_KEY_LABEL, o->counter, o->label, key,
                                &blob, &len) == TS_OK) {
        fp = fopen(o->out, "wb");
        if (fp != NULL && fwrite(blob, 1, len, fp) == len) {
            status = 0;
        }
        if (fp != NULL && fclose(fp) != 0) {
            status = 1;
        }
    }
    OPENSSL_free(blob);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(key);
    return status;
}

int main(int argc, char **argv)
{
    opts o = {0};
    ts_keystore *ks = NULL;
    EVP_PKEY *sender = NULL;
    int status;

    if (argc < 2 || (strcmp(argv[1], "install") != 0 && strcmp(argv[1], "seal") != 0)) {
        return usage();
    }
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--keystore") == 0) {
            o.keystore = argv[i + 1];
        } else if (strcmp(argv[i], "--sender-key") == 0) {
            o.sender = argv[i + 1];
        } else if (strcmp(argv[i], "--label") == 0) {
            o.label = argv[i + 1];
        } else if (strcmp(argv[i], "--out") == 0) {
            o.out = argv[i + 1];
        } else if (strcmp(argv[i], "--counter") == 0) {
            o.counter = strtoull(argv[i + 1], NULL, 10);
        } else {
            return usage();
        }
    }
    if (o.keystore == NULL || o.sender == NULL ||
        (strcmp(argv[1], "seal") == 0 && (o.label == NULL || o.out == NULL || o.counter == 0))) {
        return usage();
    }
    sender = sender_load(o.sender);
    if (sender == NULL) {
        return 1;
    }
    if (ts_keystore_open(o.keystore, &ks) != TS_OK) {
        fprintf(stderr, "sync_seal: %s\n", ts_error_message());
        EVP_PKEY_free(sender);
        return 1;
    }
    status = strcmp(argv[1], "install") == 0 ? install(ks, sender) : seal(ks, sender, &o);
    if (status != 0) {
        fprintf(stderr, "sync_seal: %s failed: %s\n", argv[1], ts_error_message());
    }
    ts_keystore_free(ks);
    EVP_PKEY_free(sender);
    return status;
}
