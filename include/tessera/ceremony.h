/*
 * The key ceremony's paper backup: Shamir secret sharing over GF(256) and printable share files.
 *
 * A key made with TS_KEY_BACKUP is wrapped inside its key store under a fresh AES-256
 * key-encryption key (ts_keystore_backup_key); the wrapped blob is kept beside the instance and
 * the KEK is split M-of-N into share files that people keep on paper. Any M shares give the KEK
 * back; fewer give nothing about it. docs/ceremony.md describes the scheme and the file format.
 *
 * Layers: ts_shamir_* is the bare arithmetic; ts_share_file_* reads and writes one share file;
 * ts_share_files_combine checks a set of parsed files belong together and recombines them;
 * ts_ceremony_backup / ts_ceremony_restore do the whole of a backup or a restore with a key store.
 *
 * Secrets: ts_share and ts_share_file hold key material. Wipe them with OPENSSL_cleanse() when
 * done (ts_share_file_wipe). Nothing here logs a share or a KEK; error messages name shares, files
 * and lines, never a share's bytes.
 *
 * Thread safety: every function is reentrant; none keeps state between calls.
 */
#ifndef TESSERA_CEREMONY_H
#define TESSERA_CEREMONY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "tessera/error.h"
#include "tessera/export.h"
#include "tessera/keystore.h"
#include "tessera/pki.h"

enum {
    TS_SHARE_SECRET_LEN = 32,     /* bytes of a shared secret: an AES-256 KEK */
    TS_SHARE_MIN = 2,             /* threshold and count: 2 <= M <= N <= 255 */
    TS_SHARE_MAX = 255,           /* x-coordinates are 1..255, the non-zero elements of GF(256) */
    TS_SHARE_NAME_MAX = 32,       /* characters of the optional instance name */
    TS_SHARE_FILE_MAX = 4 * 1024, /* bytes of a share file as read */
};

/* --- Shamir secret sharing over GF(256) ---------------------------------------------------- */

/* One share: the point (x, f(x)) for each of the secret's bytes, all at the same x. */
typedef struct ts_share {
    uint8_t x; /* 1..255 */
    uint8_t y[TS_SHARE_SECRET_LEN];
} ts_share;

/*
 * Splits secret into count shares, any threshold of which give it back (2 <= threshold <= count
 * <= 255). shares[i] gets x = i + 1. Coefficients come from RAND_priv_bytes and are wiped.
 * TS_ERR_INVALID for bad counts, TS_ERR_CRYPTO when the generator fails.
 */
TS_API TS_MUST_CHECK ts_err ts_shamir_split(const uint8_t secret[TS_SHARE_SECRET_LEN],
                                            unsigned threshold, unsigned count, ts_share *shares);

/*
 * Recombines count (>= 2) shares by Lagrange interpolation at x = 0. The caller gives at least the
 * threshold of shares; with fewer the result is an unrelated value (there is no way to tell).
 * TS_ERR_INVALID for x = 0 or two shares with the same x.
 */
TS_API TS_MUST_CHECK ts_err ts_shamir_combine(const ts_share *shares, size_t count,
                                              uint8_t secret[TS_SHARE_SECRET_LEN]);

/* --- Share files ----------------------------------------------------------------------------- */
/*
 * A share file is text a person can type back from paper: numbered lines, each ending with a
 * 4-hex-digit checksum of its number and content, so a mistyped character is caught and its line
 * named. It carries the format version, the share's index i of N, the threshold M, the SHA-256
 * fingerprint of the root certificate whose key the shares protect, the id of the split (so
 * that shares of two backups are not mixed), optionally the instance name and date, the 32 share
 * bytes in groups of four hex digits, and a final check over the whole share. Hex is read in either
 * case; blank lines and extra spaces between groups are ignored.
 */
typedef struct ts_share_file {
    unsigned index;                       /* i: 1..count, the share's x */
    unsigned count;                       /* N */
    unsigned threshold;                   /* M */
    char fingerprint[TS_FINGERPRINT_HEX]; /* root certificate SHA-256, lower-case hex */
    char set[9]; /* the backup's id, 8 hex digits: every share of one split has the same */
    char instance[TS_SHARE_NAME_MAX + 1]; /* [A-Za-z0-9._-], or "" when absent */
    char date[11];                        /* YYYY-MM-DD, or "" when absent */
    uint8_t share[TS_SHARE_SECRET_LEN];   /* y-values at x = index */
} ts_share_file;

/* Wipes a parsed or filled-in share file. NULL is fine. */
TS_API void ts_share_file_wipe(ts_share_file *sf);

/*
 * Formats a share file as text (lines end with '\n'), a new string the caller frees with
 * OPENSSL_clear_free(*text, strlen(*text)). TS_ERR_INVALID when a field is out of range.
 */
TS_API TS_MUST_CHECK ts_err ts_share_file_format(const ts_share_file *sf, char **text);

/*
 * Parses a share file. name prefixes every error message, such as "share 3 (kim.txt)" (NULL:
 * none); messages then name the line, as in "share 3 (kim.txt), line 5: checksum mismatch —
 * retype this line" or "line 1: not a Tessera share". TS_ERR_INVALID on any error; *out is
 * wiped then.
 */
TS_API TS_MUST_CHECK ts_err ts_share_file_parse(const char *text, size_t len, const char *name,
                                                ts_share_file *out);

/* Reads (at most TS_SHARE_FILE_MAX bytes) and parses a file. TS_ERR_IO when it cannot be read. */
TS_API TS_MUST_CHECK ts_err ts_share_file_read(const char *path, const char *name,
                                               ts_share_file *out);

/* Writes a share file atomically with mode 0600; TS_ERR_EXISTS when path exists. */
TS_API TS_MUST_CHECK ts_err ts_share_file_write(const char *path, const ts_share_file *sf);

/*
 * Recombines parsed share files into the KEK. names[i] (or NULL) names files[i] in messages.
 * Checks that every file names the same fingerprint (and, when fingerprint is not NULL, that
 * one), split id, threshold and count, that indices are distinct, and that there are at least M of
 * them
 * ("2 shares given, 3 needed"); TS_ERR_INVALID otherwise. The KEK is only known to be right once
 * it unwraps the key: ts_keystore_restore_key() fails with TS_ERR_AUTH on a wrong one.
 */
TS_API TS_MUST_CHECK ts_err ts_share_files_combine(const ts_share_file *files,
                                                   const char *const *names, size_t n,
                                                   const char *fingerprint,
                                                   uint8_t kek[TS_SHARE_SECRET_LEN]);

/* --- The whole ceremony ---------------------------------------------------------------------- */

/* The file name, under the instance directory, of the wrapped root key (not secret on its own). */
#define TS_CEREMONY_WRAPPED_FILE "root-key.wrapped"

/*
 * Backs up the TS_KEY_BACKUP key label, whose certificate is root: checks the key is root's,
 * wraps it (ts_keystore_backup_key), splits the KEK threshold-of-count and formats the shares.
 * instance and date (YYYY-MM-DD) are printed on the shares when not NULL. On success *wrapped
 * (free with OPENSSL_free) is the blob to keep and (*texts)[0..count-1] the share files, share
 * i + 1 in (*texts)[i], freed with ts_ceremony_texts_free(). The KEK is wiped before returning.
 */
TS_API TS_MUST_CHECK ts_err ts_ceremony_backup(ts_keystore *ks, const char *label, const X509 *root,
                                               unsigned threshold, unsigned count,
                                               const char *instance, const char *date,
                                               uint8_t **wrapped, size_t *wrapped_len,
                                               char ***texts);

/* Wipes and frees the share texts of ts_ceremony_backup(). NULL is fine. */
TS_API void ts_ceremony_texts_free(char **texts, size_t count);

/*
 * Restores the key whose certificate is root into ks under label: reads the share files at
 * paths[0..n-1] (named "share K (PATH)" in messages, K counting from 1 in the order given),
 * recombines them for root's fingerprint and unwraps wrapped with the KEK, checking the key
 * matches root's public key. flags: TS_KEY_* for the restored key. TS_ERR_IO for an unreadable
 * share file; TS_ERR_INVALID for mistyped, mismatched or too few shares; TS_ERR_AUTH when the
 * shares or the blob are wrong; TS_ERR_EXISTS when label is taken. Nothing is stored on failure.
 */
TS_API TS_MUST_CHECK ts_err ts_ceremony_restore(ts_keystore *ks, const char *label,
                                                const X509 *root, const uint8_t *wrapped,
                                                size_t wrapped_len, const char *const *paths,
                                                size_t n, unsigned flags);

#endif
