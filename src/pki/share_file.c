/*
 * Share files: one Shamir share as text a person can type back from paper (docs/ceremony.md).
 *
 *   01 TESSERA-SHARE V1                                 9807
 *   02 SHARE 2 OF 5 NEED 3 SET 915E2382                 01EB
 *   03 ROOT D654 330A C3ED 9D33 6560 988A 0E43 2808     DBFD
 *   04 ROOT C472 B174 3991 8B94 2C31 5BBA 47DE A023     815B
 *   05 NAME acme-prod                                   24AB   (optional)
 *   06 DATE 2025-01-31                                  647F   (optional)
 *   07 KEY 2DD8 5F13 B4AB EDF9                          4BB4
 *   08 KEY 4EC2 FFF5 6ACD 6E40                          0A2C
 *   09 KEY E6D1 19E5 85AD E9D0                          1316
 *   10 KEY FDA7 2EE9 E1C3 6C49                          4336
 *   11 END B8FC533B                                     1D09
 *
 * Each line starts with its number and ends with a check: CRC-16/CCITT (polynomial 0x1021,
 * initial value 0xFFFF) over the line's canonical form, its tokens joined by one space without the
 * check, upper-cased except the instance name. A CRC of 16 bits catches every error burst up to
 * 16 bits long, so every single mistyped character and every swap of two neighbouring characters
 * is caught, and the line is named. (A hash cut to 16 bits would miss one typo in 65536.) Line
 * numbers are part of what is checked, so lines cannot be swapped or skipped unnoticed. The END
 * line holds the first 4 bytes of SHA-256 over the canonical forms of all the lines before it,
 * each followed by a newline: a last check against errors that slip past a line's CRC.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/error_internal.h"
#include "pki/share_file_internal.h"

enum {
    LINE_MAX_CHARS = 160, /* a line of a share file; ours are about 60 */
    TOKENS_MAX = 12,      /* tokens on a line: number, tag, up to 8 groups, check, and one over */
    CANON_MAX = 128,      /* the canonical form of a line */
    CHECK_COLUMN = 52,    /* where formatted lines put their check, for the eye */
    KEY_LINES = 4,        /* 32 bytes as four lines of four groups of four hex digits */
    KEY_GROUPS = 4,
    ROOT_LINES = 2, /* the fingerprint: two lines of eight groups */
    ROOT_GROUPS = 8,
    TEXT_MAX = 1024, /* a formatted share file */
};

#define SHARE_MAGIC "TESSERA-SHARE"
#define SHARE_V1    "V1"

/* --- formatting ------------------------------------------------------------------------------ */

typedef struct text_buf {
    char *text;
    size_t len;
    char canon_all[TEXT_MAX]; /* canonical lines, each with '\n', for the END check */
    size_t canon_len;
    unsigned line;
    int failed;
} text_buf;

/* Appends one line: "NN " + content, padded, then its check. content is canonical already. */
static void emit(text_buf *tb, const char *content)
{
    char canon[CANON_MAX];
    int n = snprintf(canon, sizeof canon, "%02u %s", ++tb->line, content);

    if (tb->failed || n < 0 || (size_t)n >= sizeof canon ||
        tb->canon_len + (size_t)n + 1 > sizeof tb->canon_all) {
        tb->failed = 1;
        return;
    }
    memcpy(tb->canon_all + tb->canon_len, canon, (size_t)n);
    tb->canon_len += (size_t)n;
    tb->canon_all[tb->canon_len++] = '\n';
    unsigned crc = ts_share_crc16((const uint8_t *)canon, (size_t)n);
    int pad = n < CHECK_COLUMN ? CHECK_COLUMN - n : 1;
    int w = snprintf(tb->text + tb->len, TEXT_MAX - tb->len, "%s%*s%04X\n", canon, pad, "", crc);
    OPENSSL_cleanse(canon, sizeof canon);
    if (w < 0 || (size_t)w >= TEXT_MAX - tb->len) {
        tb->failed = 1;
        return;
    }
    tb->len += (size_t)w;
}

/* "TAG XXXX XXXX ..." from bytes, groups of two bytes, upper-case hex. */
static void emit_groups(text_buf *tb, const char *tag, const uint8_t *bytes, size_t groups)
{
    char content[CANON_MAX];
    size_t at = (size_t)snprintf(content, sizeof content, "%s", tag);

    for (size_t g = 0; g < groups; g++) {
        char *p = content + at;
        p[0] = ' ';
        for (size_t k = 0; k < 2; k++) {
            p[1 + 2 * k] = ts_share_hex_digit(bytes[2 * g + k] >> 4);
            p[2 + 2 * k] = ts_share_hex_digit(bytes[2 * g + k] & 0x0FU);
        }
        p[5] = '\0';
        at += 5;
    }
    emit(tb, content);
    OPENSSL_cleanse(content, sizeof content);
}

ts_err ts_share_file_format(const ts_share_file *sf, char **text)
{
    text_buf tb;
    uint8_t fp[32], digest[32];
    char content[CANON_MAX], set[9];

    if (sf == NULL || text == NULL) {
        return ts_error_set(TS_ERR_INVALID, "share file: nothing to format");
    }
    *text = NULL;
    if (sf->threshold < TS_SHARE_MIN || sf->count > TS_SHARE_MAX || sf->threshold > sf->count ||
        sf->index < 1 || sf->index > sf->count) {
        return ts_error_set(TS_ERR_INVALID, "share file: share %u of %u, %u needed, is not valid",
                            sf->index, sf->count, sf->threshold);
    }
    if (!ts_share_hex_ok(sf->fingerprint, 64) || !ts_share_hex_ok(sf->set, 8)) {
        return ts_error_set(TS_ERR_INVALID, "share file: the fingerprint must be 64 hex digits "
                                            "and the set id 8");
    }
    if ((sf->instance[0] != '\0' && !ts_share_name_ok(sf->instance)) ||
        (sf->date[0] != '\0' && !ts_share_date_ok(sf->date))) {
        return ts_error_set(TS_ERR_INVALID,
                            "share file: the instance name must be 1 to %d of "
                            "A-Z a-z 0-9 . _ - and the date YYYY-MM-DD",
                            TS_SHARE_NAME_MAX);
    }
    ts_share_hex_decode(sf->fingerprint, 32, fp);
    for (size_t i = 0; i < 8; i++) {
        set[i] = ts_share_upper(sf->set[i]);
    }
    set[8] = '\0';
    memset(&tb, 0, sizeof tb);
    tb.text = OPENSSL_zalloc(TEXT_MAX);
    if (tb.text == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory formatting a share");
    }
    emit(&tb, SHARE_MAGIC " " SHARE_V1);
    snprintf(content, sizeof content, "SHARE %u OF %u NEED %u SET %s", sf->index, sf->count,
             sf->threshold, set);
    emit(&tb, content);
    for (size_t i = 0; i < ROOT_LINES; i++) {
        emit_groups(&tb, "ROOT", fp + i * 2 * ROOT_GROUPS, ROOT_GROUPS);
    }
    if (sf->instance[0] != '\0') {
        snprintf(content, sizeof content, "NAME %s", sf->instance);
        emit(&tb, content);
    }
    if (sf->date[0] != '\0') {
        snprintf(content, sizeof content, "DATE %s", sf->date);
        emit(&tb, content);
    }
    for (size_t i = 0; i < KEY_LINES; i++) {
        emit_groups(&tb, "KEY", sf->share + i * 2 * KEY_GROUPS, KEY_GROUPS);
    }
    if (!tb.failed && EVP_Digest(tb.canon_all, tb.canon_len, digest, NULL, EVP_sha256(), NULL)) {
        snprintf(content, sizeof content, "END %02X%02X%02X%02X", digest[0], digest[1], digest[2],
                 digest[3]);
        emit(&tb, content);
    } else {
        tb.failed = 1;
    }
    OPENSSL_cleanse(tb.canon_all, sizeof tb.canon_all);
    if (tb.failed) {
        OPENSSL_clear_free(tb.text, TEXT_MAX);
        return ts_error_set(TS_ERR_CRYPTO, "share file: formatting failed");
    }
    *text = tb.text;
    return TS_OK;
}

/* --- parsing --------------------------------------------------------------------------------- */

typedef struct parser {
    const char *name; /* prefix of messages, or NULL */
    unsigned line;    /* the number of the line being read: 1 for the first non-blank line */
    char canon_all[TEXT_MAX];
    size_t canon_len;
} parser;

static ts_err line_error(const parser *ps, const char *fmt, ...) TS_PRINTF(2, 3);

static ts_err line_error(const parser *ps, const char *fmt, ...)
{
    char what[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (ps->name != NULL) {
        return ts_error_set(TS_ERR_INVALID, "%s, line %u: %s", ps->name, ps->line, what);
    }
    return ts_error_set(TS_ERR_INVALID, "line %u: %s", ps->line, what);
}

/* One line cut into tokens (pointers into buf, which is the line with NULs between tokens). */
typedef struct line_tokens {
    char buf[LINE_MAX_CHARS + 1];
    char *tok[TOKENS_MAX];
    size_t n;
} line_tokens;

static ts_err tokenize(const parser *ps, const char *line, size_t len, line_tokens *lt)
{
    if (len > LINE_MAX_CHARS) {
        return line_error(ps, "longer than any line of a share — retype this line");
    }
    memcpy(lt->buf, line, len);
    lt->buf[len] = '\0';
    lt->n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)lt->buf[i];
        if (c == ' ' || c == '\t') {
            lt->buf[i] = '\0';
        } else if (c < 0x21 || c > 0x7e) {
            /* On the first line, most likely a file of another kind (DER, a photo...). */
            return ps->line == 1
                       ? line_error(ps, "not a Tessera share (it holds bytes that are not text)")
                       : line_error(ps, "has a character that is not printable — retype this "
                                        "line");
        }
    }
    for (size_t i = 0; i < len; i++) {
        if (lt->buf[i] != '\0' && (i == 0 || lt->buf[i - 1] == '\0')) {
            if (lt->n == TOKENS_MAX) {
                return line_error(ps, "has too many groups — retype this line");
            }
            lt->tok[lt->n++] = &lt->buf[i];
        }
    }
    return TS_OK;
}

static int token_is(const char *tok, const char *word)
{
    return strcasecmp(tok, word) == 0;
}

/*
 * Checks the line's number and check, and adds its canonical form to the END check. The
 * canonical form: tokens but the last, joined by one space, upper-cased except a NAME's value.
 */
static ts_err check_line(parser *ps, line_tokens *lt)
{
    char canon[CANON_MAX];
    char number[4];
    size_t at = 0;

    snprintf(number, sizeof number, "%02u", ps->line);
    if (lt->n < 3 || strcmp(lt->tok[0], number) != 0) {
        return line_error(ps,
                          "does not start with its number %s (a line missing or mistyped?) — "
                          "retype this line",
                          number);
    }
    const char *check = lt->tok[lt->n - 1];
    if (!ts_share_hex_ok(check, 4)) {
        return line_error(ps, "does not end with a 4-digit check — retype this line");
    }
    int keep_case = token_is(lt->tok[1], "NAME");
    for (size_t t = 0; t + 1 < lt->n; t++) {
        size_t n = strlen(lt->tok[t]);
        if (at + n + 1 > sizeof canon) {
            return line_error(ps, "is too long — retype this line");
        }
        for (size_t i = 0; i < n; i++) {
            char c = lt->tok[t][i];
            canon[at++] = keep_case && t == 2 ? c : ts_share_upper(c);
        }
        canon[at++] = t + 2 < lt->n ? ' ' : '\0';
    }
    unsigned want = (unsigned)strtoul(check, NULL, 16);
    unsigned got = ts_share_crc16((const uint8_t *)canon, at - 1);
    if (want != got) {
        OPENSSL_cleanse(canon, sizeof canon);
        return line_error(ps, "checksum mismatch — retype this line");
    }
    if (ps->canon_len + at > sizeof ps->canon_all) {
        OPENSSL_cleanse(canon, sizeof canon);
        return line_error(ps, "the share is too long");
    }
    memcpy(ps->canon_all + ps->canon_len, canon, at - 1);
    ps->canon_len += at - 1;
    ps->canon_all[ps->canon_len++] = '\n';
    OPENSSL_cleanse(canon, sizeof canon);
    return TS_OK;
}

/* Groups of four hex digits into bytes. */
static ts_err parse_groups(const parser *ps, const line_tokens *lt, size_t groups, uint8_t *out)
{
    if (lt->n != groups + 3) {
        return line_error(ps, "has %zu groups, not %zu", lt->n - 3, groups);
    }
    for (size_t g = 0; g < groups; g++) {
        const char *s = lt->tok[2 + g];
        if (!ts_share_hex_ok(s, 4)) {
            return line_error(ps, "group %zu is not 4 hex digits", g + 1);
        }
        ts_share_hex_decode(s, 2, out + 2 * g);
    }
    return TS_OK;
}

/* A decimal 1..255 without leading zeros. */
static int parse_small(const char *s, unsigned *v)
{
    size_t n = strlen(s);
    if (n == 0 || n > 3 || s[0] == '0') {
        return 0;
    }
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return 0;
        }
        *v = *v * 10 + (unsigned)(s[i] - '0');
    }
    return *v <= TS_SHARE_MAX;
}

/* "SHARE i OF n NEED m SET xxxxxxxx" */
static ts_err parse_share_line(const parser *ps, const line_tokens *lt, ts_share_file *sf)
{
    char *const *t = lt->tok;
    if (lt->n != 10 || !token_is(t[3], "OF") || !token_is(t[5], "NEED") || !token_is(t[7], "SET") ||
        !parse_small(t[2], &sf->index) || !parse_small(t[4], &sf->count) ||
        !parse_small(t[6], &sf->threshold) || !ts_share_hex_ok(t[8], 8)) {
        return line_error(ps, "is not 'SHARE i OF N NEED M SET id'");
    }
    if (sf->threshold < TS_SHARE_MIN || sf->threshold > sf->count || sf->index > sf->count) {
        return line_error(ps, "share %u of %u with %u needed is not possible", sf->index, sf->count,
                          sf->threshold);
    }
    for (size_t i = 0; i < 8; i++) {
        sf->set[i] = ts_share_upper(t[8][i]);
    }
    sf->set[8] = '\0';
    return TS_OK;
}

/* Where the parser is: the lines of a share come in this order, NAME and DATE optional. */
typedef enum stage {
    AT_HEAD,
    AT_SHARE,
    AT_ROOT,
    AT_NAME, /* NAME, DATE or KEY may come */
    AT_DATE, /* DATE or KEY */
    AT_KEY,
    AT_END,
    DONE,
} stage;

typedef struct progress {
    stage at;
    size_t roots, keys;
    uint8_t fp[32];
} progress;

static ts_err parse_line(parser *ps, line_tokens *lt, progress *pg, ts_share_file *sf)
{
    const char *tag = lt->n > 1 ? lt->tok[1] : "";
    size_t before = ps->canon_len;
    ts_err rv;

    if (pg->at == DONE) {
        return line_error(ps, "text after the END line");
    }
    if (pg->at == AT_HEAD && !token_is(tag, SHARE_MAGIC)) {
        return line_error(ps, "not a Tessera share");
    }
    rv = check_line(ps, lt);
    if (rv != TS_OK) {
        return rv;
    }
    if (pg->at == AT_HEAD) {
        if (lt->n != 4 || !token_is(lt->tok[2], SHARE_V1)) {
            return line_error(ps, "a share of a format version this program does not read");
        }
        pg->at = AT_SHARE;
        return TS_OK;
    }
    if (pg->at == AT_SHARE && token_is(tag, "SHARE")) {
        pg->at = AT_ROOT;
        return parse_share_line(ps, lt, sf);
    }
    if (pg->at == AT_ROOT && token_is(tag, "ROOT")) {
        rv = parse_groups(ps, lt, ROOT_GROUPS, pg->fp + pg->roots * 2 * ROOT_GROUPS);
        pg->at = ++pg->roots == ROOT_LINES ? AT_NAME : AT_ROOT;
        return rv;
    }
    if (pg->at == AT_NAME && token_is(tag, "NAME")) {
        if (lt->n != 4 || !ts_share_name_ok(lt->tok[2])) {
            return line_error(ps, "the instance name is not 1 to %d of A-Z a-z 0-9 . _ -",
                              TS_SHARE_NAME_MAX);
        }
        memcpy(sf->instance, lt->tok[2], strlen(lt->tok[2]) + 1);
        pg->at = AT_DATE;
        return TS_OK;
    }
    if ((pg->at == AT_NAME || pg->at == AT_DATE) && token_is(tag, "DATE")) {
        if (lt->n != 4 || strlen(lt->tok[2]) != 10 || !ts_share_date_ok(lt->tok[2])) {
            return line_error(ps, "the date is not YYYY-MM-DD");
        }
        memcpy(sf->date, lt->tok[2], 11);
        pg->at = AT_KEY;
        return TS_OK;
    }
    if ((pg->at == AT_NAME || pg->at == AT_DATE || pg->at == AT_KEY) && token_is(tag, "KEY")) {
        rv = parse_groups(ps, lt, KEY_GROUPS, sf->share + pg->keys * 2 * KEY_GROUPS);
        pg->at = ++pg->keys == KEY_LINES ? AT_END : AT_KEY;
        return rv;
    }
    if (pg->at == AT_END && token_is(tag, "END")) {
        uint8_t digest[32];
        char want[9];
        pg->at = DONE;
        if (lt->n != 4 || !ts_share_hex_ok(lt->tok[2], 8) ||
            !EVP_Digest(ps->canon_all, before, digest, NULL, EVP_sha256(), NULL)) {
            return line_error(ps, "is not 'END' and 8 hex digits");
        }
        snprintf(want, sizeof want, "%02X%02X%02X%02X", digest[0], digest[1], digest[2], digest[3]);
        if (strcasecmp(want, lt->tok[2]) != 0) {
            return line_error(ps, "the check over the whole share does not match: a line above "
                                  "has more than one typo — retype the share");
        }
        return TS_OK;
    }
    static const char *const wanted[] = {"TESSERA-SHARE", "SHARE", "ROOT", "NAME, DATE or KEY",
                                         "DATE or KEY",   "KEY",   "END"};
    return line_error(ps, "a %s line belongs here", wanted[pg->at]);
}

ts_err ts_share_file_parse(const char *text, size_t len, const char *name, ts_share_file *out)
{
    parser *ps = NULL;
    line_tokens *lt = NULL;
    progress pg;
    ts_err rv = TS_OK;

    if (out == NULL) {
        return ts_error_set(TS_ERR_INVALID, "share file: nowhere to put the share");
    }
    memset(out, 0, sizeof *out);
    if (text == NULL || len > TS_SHARE_FILE_MAX) {
        return ts_error_set(TS_ERR_INVALID, "%s%sempty, or larger than a share file",
                            name != NULL ? name : "", name != NULL ? ": " : "");
    }
    ps = OPENSSL_zalloc(sizeof *ps);
    lt = OPENSSL_zalloc(sizeof *lt);
    if (ps == NULL || lt == NULL) {
        rv = ts_error_set(TS_ERR_NOMEM, "out of memory reading a share");
        goto done;
    }
    ps->name = name;
    memset(&pg, 0, sizeof pg);
    for (size_t at = 0; at < len && rv == TS_OK;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        size_t n = end - at;
        if (n > 0 && text[at + n - 1] == '\r') {
            n--;
        }
        size_t blank = 0;
        while (blank < n && (text[at + blank] == ' ' || text[at + blank] == '\t')) {
            blank++;
        }
        if (blank < n) {
            ps->line++;
            rv = tokenize(ps, text + at, n, lt);
            if (rv == TS_OK) {
                rv = parse_line(ps, lt, &pg, out);
            }
        }
        at = end + 1;
    }
    if (rv == TS_OK && pg.at != DONE) {
        ps->line++;
        rv = pg.at == AT_HEAD && ps->line == 1
                 ? line_error(ps, "not a Tessera share (the file is empty)")
                 : line_error(ps, "missing: the share ends before its END line");
    }
    if (rv == TS_OK) {
        for (size_t i = 0; i < 32; i++) {
            snprintf(out->fingerprint + 2 * i, 3, "%02x", pg.fp[i]);
        }
    }
done:
    OPENSSL_cleanse(&pg, sizeof pg);
    OPENSSL_clear_free(ps, sizeof *ps);
    OPENSSL_clear_free(lt, sizeof *lt);
    if (rv != TS_OK) {
        OPENSSL_cleanse(out, sizeof *out);
    }
    return rv;
}

void ts_share_file_wipe(ts_share_file *sf)
{
    if (sf != NULL) {
        OPENSSL_cleanse(sf, sizeof *sf);
    }
}
