/* Checks for the key-store conformance cases; see ks_check.h. */
#include <ctype.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ks_check.h"

static int contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p != '\0'; p++) {
        size_t i = 0;
        while (i < n && p[i] != '\0' &&
               tolower((unsigned char)p[i]) == tolower((unsigned char)needle[i])) {
            i++;
        }
        if (i == n) {
            return 1;
        }
    }
    return n == 0;
}

void ks_expect_at(const char *file, int line, const char *expr, ts_err got, ts_err want,
                  const char *substr)
{
    const char *msg = ts_error_message();
    if (got != want) {
        ks_check_fail(file, line, "%s\n    returned %d (%s), want %d (%s)\n    message: %s", expr,
                      (int)got, ts_err_name(got), (int)want, ts_err_name(want),
                      got != TS_OK ? msg : "-");
    }
    if (want == TS_OK) {
        return;
    }
    if (msg == NULL || msg[0] == '\0' || strcmp(msg, "no error") == 0) {
        ks_check_fail(file, line, "%s\n    failed with %s but left no message", expr,
                      ts_err_name(got));
    }
    if (substr != NULL && !contains_nocase(msg, substr)) {
        ks_check_fail(file, line, "%s\n    message \"%s\" does not mention \"%s\"", expr, msg,
                      substr);
    }
}

void ks_snapshot_at(const char *file, int line, ts_keystore *ks, ks_snapshot *snap)
{
    ts_err rv = ks_snapshot_take(ks, snap);
    if (rv != TS_OK) {
        ks_check_fail(file, line, "ts_keystore_list failed: %s (%s)", ts_err_name(rv),
                      ts_error_message());
    }
}

void ks_unchanged_at(const char *file, int line, ts_keystore *ks, ks_snapshot *before)
{
    ks_snapshot after;
    char why[512];
    ks_snapshot_at(file, line, ks, &after);
    int same = ks_snapshot_equal(before, &after, why, sizeof why);
    ks_snapshot_free(before);
    ks_snapshot_free(&after);
    if (!same) {
        ks_check_fail(file, line, "the store changed: %s", why);
    }
}

void ks_sign_and_verify_at(const char *file, int line, ts_keystore *ks, const char *label,
                           EVP_PKEY *pub, size_t digest_len)
{
    static const char message[] = "tessera key-store conformance";
    uint8_t digest[EVP_MAX_MD_SIZE];
    uint8_t sig[TS_SIGNATURE_MAX];
    size_t sig_len = sizeof sig;
    unsigned int md_len = 0;
    const EVP_MD *md = digest_len == 48 ? EVP_sha384() : EVP_sha256();

    if (EVP_Digest(message, sizeof message - 1, digest, &md_len, md, NULL) != 1 ||
        md_len != digest_len) {
        ks_check_fail(file, line, "no digest of %zu bytes", digest_len);
    }
    ts_err rv = ts_keystore_sign_digest(ks, label, digest, digest_len, sig, &sig_len);
    if (rv != TS_OK) {
        ks_check_fail(file, line, "signing a %zu-byte digest with '%s' failed: %s (%s)", digest_len,
                      label, ts_err_name(rv), ts_error_message());
    }
    if (sig_len == 0 || sig_len > TS_SIGNATURE_MAX) {
        ks_check_fail(file, line, "signature of %zu bytes", sig_len);
    }
    int ok = ks_verify(pub, digest, digest_len, sig, sig_len);
    if (ok != 1) {
        ks_check_fail(file, line, "OpenSSL does not verify the signature by '%s' (%d)", label, ok);
    }
    /* A tamper check: the same signature over a digest with one bit flipped must not verify. */
    digest[digest_len / 2] ^= 0x01;
    ok = ks_verify(pub, digest, digest_len, sig, sig_len);
    if (ok != 0) {
        ks_check_fail(file, line, "the signature by '%s' verifies over a flipped digest (%d)",
                      label, ok);
    }
}
