/*
 * Share files (src/pki/share_file.c, share_set.c): the round trip, what a person may type
 * differently without harm, every single mistyped character on every line caught and its line
 * named, broken structure, and the checks made when shares are combined.
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include <openssl/crypto.h>

#include "pki/share_file_internal.h"
#include "test_support.h"
#include "tessera/ceremony.h"

#define FP_A "0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0"
#define FP_B "ff1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0"

static void fill(ts_share_file *sf, unsigned index, int optional)
{
    memset(sf, 0, sizeof *sf);
    sf->index = index;
    sf->count = 5;
    sf->threshold = 3;
    memcpy(sf->fingerprint, FP_A, sizeof FP_A);
    memcpy(sf->set, "0A1B2C3D", 9);
    if (optional) {
        memcpy(sf->instance, "Acme.prod_1", sizeof "Acme.prod_1");
        memcpy(sf->date, "2025-01-31", 11);
    }
    for (size_t i = 0; i < TS_SHARE_SECRET_LEN; i++) {
        sf->share[i] = (uint8_t)(index * 31 + i * 17 + 0xA0);
    }
}

static char *format(const ts_share_file *sf)
{
    char *text = NULL;
    assert_int_equal(ts_share_file_format(sf, &text), TS_OK);
    return text;
}

/* Parses text; expects TS_ERR_INVALID with a message containing want. */
static void refused(const char *text, const char *name, const char *want)
{
    ts_share_file out;
    ts_err rv = ts_share_file_parse(text, strlen(text), name, &out);
    if (rv != TS_ERR_INVALID || strstr(ts_error_message(), want) == NULL) {
        fail_msg("got %s '%s', want '%s' for:\n%s", ts_err_name(rv), ts_error_message(), want,
                 text);
    }
    /* Nothing of a refused share is left behind. */
    static const ts_share_file zero;
    assert_memory_equal(&out, &zero, sizeof out);
}

static void crc_check_value(void **state)
{
    (void)state;
    /* The catalogued check value of CRC-16/CCITT-FALSE. */
    assert_int_equal(ts_share_crc16((const uint8_t *)"123456789", 9), 0x29B1);
}

/* The mask-based text helpers against ctype, for every byte. */
static void text_helpers(void **state)
{
    (void)state;
    for (unsigned n = 0; n < 16; n++) {
        assert_int_equal(ts_share_hex_digit(n), "0123456789ABCDEF"[n]);
    }
    for (unsigned c = 1; c < 256; c++) {
        char s[3] = {(char)c, (char)c, '\0'};
        uint8_t b = 0;
        assert_int_equal(ts_share_upper((char)c), (char)toupper((int)c));
        assert_int_equal(ts_share_hex_ok(s, 2), isxdigit((int)c) != 0);
        if (isxdigit((int)c)) {
            ts_share_hex_decode(s, 1, &b);
            assert_int_equal(b, strtoul(s, NULL, 16));
        }
    }
    assert_false(ts_share_hex_ok("ABC", 4));
    assert_false(ts_share_hex_ok("ABCDE", 4));
}

static void round_trip(void **state)
{
    (void)state;
    for (int optional = 0; optional < 2; optional++) {
        ts_share_file sf, out;
        fill(&sf, 3, optional);
        char *text = format(&sf);
        assert_int_equal(ts_share_file_parse(text, strlen(text), NULL, &out), TS_OK);
        assert_memory_equal(&out, &sf, sizeof sf);
        assert_non_null(strstr(text, "01 TESSERA-SHARE V1"));
        assert_non_null(strstr(text, "SHARE 3 OF 5 NEED 3 SET 0A1B2C3D"));
        assert_true((strstr(text, "NAME Acme.prod_1") != NULL) == optional);
        OPENSSL_clear_free(text, strlen(text));
    }
}

/* What a typist may do differently: case of hex and words, spacing, blank lines, CRLF. */
static void lenient_typing(void **state)
{
    (void)state;
    ts_share_file sf, out;
    char typed[2048];
    size_t at = 0;

    fill(&sf, 2, 0);
    char *text = format(&sf);
    typed[at++] = '\n';
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '\n') {
            memcpy(typed + at, " \r\n\t\r\n", 6); /* trailing space, CRLF, a blank line */
            at += 6;
        } else if (*p == ' ') {
            memcpy(typed + at, "  \t", 3);
            at += 3;
        } else {
            typed[at++] = (char)tolower((unsigned char)*p);
        }
    }
    typed[at] = '\0';
    assert_int_equal(ts_share_file_parse(typed, at, NULL, &out), TS_OK);
    assert_memory_equal(&out, &sf, sizeof sf);
    /* No newline after the last line. */
    size_t len = strlen(text);
    assert_int_equal(ts_share_file_parse(text, len - 1, NULL, &out), TS_OK);
    OPENSSL_clear_free(text, len);
}

/* The line number (1-based) of offset in text. */
static unsigned line_of(const char *text, size_t offset)
{
    unsigned line = 1;
    for (size_t i = 0; i < offset; i++) {
        line += text[i] == '\n';
    }
    return line;
}

/* Whether offset is in the value of a NAME line, where case is part of the value. */
static int in_name_value(const char *text, size_t offset)
{
    size_t start = offset;
    while (start > 0 && text[start - 1] != '\n') {
        start--;
    }
    return strncmp(text + start + 3, "NAME ", 5) == 0 && offset >= start + 8 &&
           text[offset] != ' ' && offset < start + 8 + strlen("Acme.prod_1");
}

static int harmless(const char *text, size_t i, char was, char now)
{
    int ws_was = was == ' ' || was == '\t', ws_now = now == ' ' || now == '\t';
    if (ws_was && ws_now) {
        return 1;
    }
    return !in_name_value(text, i) && toupper((unsigned char)was) == toupper((unsigned char)now);
}

static void every_typo_caught(void **state)
{
    (void)state;
    static const char alphabet[] = "0123456789ABCDEFabcdefGHIJKLMNOPQRSTUVWXYZgnoqrstxz -._:/#O";
    ts_share_file sf, out;
    char want[64];
    size_t tried = 0;

    fill(&sf, 4, 1);
    char *text = format(&sf);
    size_t len = strlen(text);
    char *typed = OPENSSL_strdup(text);
    assert_non_null(typed);
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\n') {
            continue;
        }
        snprintf(want, sizeof want, "share 4 (kim.txt), line %u: ", line_of(text, i));
        for (const char *c = alphabet; *c != '\0'; c++) {
            if (*c == text[i] || harmless(text, i, text[i], *c)) {
                continue;
            }
            typed[i] = *c;
            ts_err rv = ts_share_file_parse(typed, len, "share 4 (kim.txt)", &out);
            if (rv != TS_ERR_INVALID || strstr(ts_error_message(), want) == NULL) {
                fail_msg("'%c' -> '%c' at %zu: %s '%s', want '%s'", text[i], *c, i, ts_err_name(rv),
                         ts_error_message(), want);
            }
            tried++;
        }
        typed[i] = text[i];
        /* Two neighbours swapped. */
        if (i + 1 < len && text[i + 1] != '\n' && !harmless(text, i, text[i], text[i + 1])) {
            typed[i] = text[i + 1];
            typed[i + 1] = text[i];
            assert_int_equal(ts_share_file_parse(typed, len, "share 4 (kim.txt)", &out),
                             TS_ERR_INVALID);
            assert_non_null(strstr(ts_error_message(), want));
            typed[i] = text[i];
            typed[i + 1] = text[i + 1];
        }
    }
    assert_true(tried > 20000);
    /* A mistyped check digit is named as a checksum mismatch. */
    char *p = strstr(typed, "05 NAME");
    assert_non_null(p);
    p = strchr(p, '\n') - 1;
    *p = *p == '0' ? '1' : '0';
    refused(typed, "share 4 (kim.txt)",
            "share 4 (kim.txt), line 5: checksum mismatch — retype this line");
    OPENSSL_free(typed);
    OPENSSL_clear_free(text, len);
}

/* Removes line n (1-based) from text, in place. */
static void drop_line(char *text, unsigned n)
{
    char *start = text;
    for (unsigned i = 1; i < n; i++) {
        start = strchr(start, '\n') + 1;
    }
    char *end = strchr(start, '\n') + 1;
    memmove(start, end, strlen(end) + 1);
}

static void broken_structure(void **state)
{
    (void)state;
    ts_share_file sf;
    char buf[2048];

    fill(&sf, 1, 0);
    char *text = format(&sf);

    refused("", NULL, "line 1: not a Tessera share");
    refused("\n\n  \n", NULL, "line 1: not a Tessera share");
    refused("-----BEGIN CERTIFICATE-----\nMIIB\n", "share 2 (a.pem)",
            "share 2 (a.pem), line 1: not a Tessera share");
    refused("\x01\x02\x03 TESSERA-SHARE", NULL, "line 1: not a Tessera share");
    refused("01 TESSERA-SHARE V1 0000\n", NULL, "line 1: checksum mismatch — retype this line");

    snprintf(buf, sizeof buf, "%s", text);
    drop_line(buf, 4);
    refused(buf, NULL, "line 4: does not start with its number 04");

    snprintf(buf, sizeof buf, "%s", text);
    buf[strlen(buf) - 1] = '\0';
    *strrchr(buf, '\n') = '\0'; /* the END line gone */
    refused(buf, NULL, "line 9: missing");

    snprintf(buf, sizeof buf, "%s10 KEY 0000 0000 0000 0000  0000\n", text);
    refused(buf, NULL, "line 10: text after the END line");

    snprintf(buf, sizeof buf, "%s", text);
    buf[30] = '\0'; /* cut inside line 1 */
    refused(buf, NULL, "line 1: does not end with a 4-digit check — retype this line");
    snprintf(buf, sizeof buf, "%s", text);
    buf[strlen(text) / 2] = '\0'; /* cut in the middle: its last line lost its check */
    ts_share_file half;
    assert_int_equal(ts_share_file_parse(buf, strlen(buf), NULL, &half), TS_ERR_INVALID);

    /* A line with a valid check in the wrong place: a DATE among the KEY lines. */
    char line[64];
    snprintf(line, sizeof line, "06 DATE 2025-01-31");
    snprintf(buf, sizeof buf, "%s", text);
    char *at = buf;
    for (int i = 0; i < 5; i++) {
        at = strchr(at, '\n') + 1;
    }
    char rest[2048];
    snprintf(rest, sizeof rest, "%s", strchr(at, '\n') + 1);
    snprintf(at, sizeof buf - (size_t)(at - buf), "%s %04X\n%s", line,
             ts_share_crc16((const uint8_t *)line, strlen(line)), rest);
    refused(buf, NULL, "line 6: a KEY line belongs here");

    /* Too long, and a character that cannot be typed. */
    char big[TS_SHARE_FILE_MAX + 2];
    memset(big, 'A', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ts_share_file out;
    assert_int_equal(ts_share_file_parse(big, sizeof big - 1, NULL, &out), TS_ERR_INVALID);
    refused("01 TESSERA-SHARE V1 9807\n02 SHARE \x7f 1 OF 5\n", NULL,
            "line 2: has a character that is not printable");
    OPENSSL_clear_free(text, strlen(text));
}

static void format_refuses(void **state)
{
    (void)state;
    ts_share_file sf;
    char *text = NULL;

    fill(&sf, 6, 0); /* 6 of 5 */
    assert_int_equal(ts_share_file_format(&sf, &text), TS_ERR_INVALID);
    fill(&sf, 1, 0);
    sf.threshold = 1;
    assert_int_equal(ts_share_file_format(&sf, &text), TS_ERR_INVALID);
    fill(&sf, 1, 0);
    sf.fingerprint[10] = 'g';
    assert_int_equal(ts_share_file_format(&sf, &text), TS_ERR_INVALID);
    fill(&sf, 1, 0);
    memcpy(sf.instance, "has space", 10);
    assert_int_equal(ts_share_file_format(&sf, &text), TS_ERR_INVALID);
    fill(&sf, 1, 0);
    memcpy(sf.date, "2025-13-01", 11);
    assert_int_equal(ts_share_file_format(&sf, &text), TS_ERR_INVALID);
    assert_null(text);
}

/* --- combining -------------------------------------------------------------------------------- */

/* Five share files of one random KEK, 3 needed. */
static void five(ts_share_file files[5], uint8_t kek[32])
{
    ts_share shares[5];
    for (size_t i = 0; i < 32; i++) {
        kek[i] = (uint8_t)(i * 7 + 1);
    }
    assert_int_equal(ts_shamir_split(kek, 3, 5, shares), TS_OK);
    for (size_t i = 0; i < 5; i++) {
        ts_share_file sf;
        fill(&sf, shares[i].x, 0);
        memcpy(sf.share, shares[i].y, 32);
        /* Through text, as they would come back from paper. */
        char *text = format(&sf);
        assert_int_equal(ts_share_file_parse(text, strlen(text), NULL, &files[i]), TS_OK);
        OPENSSL_clear_free(text, strlen(text));
    }
}

static void combine_checks(void **state)
{
    (void)state;
    ts_share_file f[5], pick[4];
    uint8_t kek[32], out[32];
    const char *names[4] = {"share 1 (a.txt)", "share 2 (b.txt)", "share 3 (c.txt)",
                            "share 4 (d.txt)"};

    five(f, kek);
    pick[0] = f[4];
    pick[1] = f[0];
    pick[2] = f[2];
    assert_int_equal(ts_share_files_combine(pick, names, 3, FP_A, out), TS_OK);
    assert_memory_equal(out, kek, 32);
    assert_int_equal(ts_share_files_combine(f, NULL, 5, NULL, out), TS_OK);
    assert_memory_equal(out, kek, 32);

    assert_int_equal(ts_share_files_combine(pick, names, 2, FP_A, out), TS_ERR_INVALID);
    assert_string_equal(ts_error_message(), "2 shares given, 3 needed");

    pick[2] = f[4]; /* the same share twice */
    assert_int_equal(ts_share_files_combine(pick, names, 3, FP_A, out), TS_ERR_INVALID);
    assert_non_null(strstr(ts_error_message(), "share 3 (c.txt) and share 1 (a.txt) are both "
                                               "share 5 of 5"));

    pick[2] = f[2];
    memcpy(pick[1].fingerprint, FP_B, sizeof FP_B); /* a share of another instance */
    assert_int_equal(ts_share_files_combine(pick, names, 3, FP_A, out), TS_ERR_INVALID);
    assert_non_null(strstr(ts_error_message(), "share 2 (b.txt) is for another root"));
    pick[1] = f[0];
    assert_int_equal(ts_share_files_combine(pick, names, 3, FP_B, out), TS_ERR_INVALID);
    assert_non_null(strstr(ts_error_message(), "share 1 (a.txt) is for the root certificate"));

    memcpy(pick[2].set, "FFFFFFFF", 9); /* a share of an earlier backup of the same root */
    assert_int_equal(ts_share_files_combine(pick, names, 3, FP_A, out), TS_ERR_INVALID);
    assert_non_null(strstr(ts_error_message(), "share 3 (c.txt) is from another backup"));

    pick[2] = f[2];
    pick[2].threshold = 2;
    assert_int_equal(ts_share_files_combine(pick, names, 3, FP_A, out), TS_ERR_INVALID);
    assert_non_null(strstr(ts_error_message(), "share 3 (c.txt) says 2 of 5"));

    /* Fewer than M shares that pass every check give a wrong KEK, found only when it unwraps
     * (test_ceremony.c); here: a wrong one is not the KEK. */
    pick[2] = f[2];
    pick[2].share[0] ^= 1;
    assert_int_equal(ts_share_files_combine(pick, names, 3, FP_A, out), TS_OK);
    assert_memory_not_equal(out, kek, 32);
    assert_int_equal(ts_share_files_combine(pick, names, 0, FP_A, out), TS_ERR_INVALID);
}

static void files_on_disk(void **state)
{
    (void)state;
    char dir[512], path[600];
    ts_share_file sf, out;
    struct stat st;

    assert_int_equal(ts_test_tmpdir(dir, sizeof dir), 0);
    snprintf(path, sizeof path, "%s/share-2.txt", dir);
    fill(&sf, 2, 1);
    assert_int_equal(ts_share_file_write(path, &sf), TS_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(ts_share_file_write(path, &sf), TS_ERR_EXISTS);
    assert_int_equal(ts_share_file_read(path, "share 1 (share-2.txt)", &out), TS_OK);
    assert_memory_equal(&out, &sf, sizeof sf);

    snprintf(path, sizeof path, "%s/absent.txt", dir);
    assert_int_equal(ts_share_file_read(path, "share 7 (absent.txt)", &out), TS_ERR_IO);
    assert_non_null(strstr(ts_error_message(), "share 7 (absent.txt)"));

    snprintf(path, sizeof path, "%s/big.txt", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < TS_SHARE_FILE_MAX + 10; i++) {
        fputc('0', f);
    }
    fclose(f);
    assert_int_equal(ts_share_file_read(path, NULL, &out), TS_ERR_INVALID);
    ts_test_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crc_check_value),   cmocka_unit_test(text_helpers),
        cmocka_unit_test(round_trip),        cmocka_unit_test(lenient_typing),
        cmocka_unit_test(every_typo_caught), cmocka_unit_test(broken_structure),
        cmocka_unit_test(format_refuses),    cmocka_unit_test(combine_checks),
        cmocka_unit_test(files_on_disk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
