/*
 * Tokens: finding the one a URI names (RFC 7512 section 2.3 token attributes and slot-id),
 * initialising a fresh one, the session and login of a store, and the token's lock file.
 */
#define _GNU_SOURCE /* secure_getenv */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/file_internal.h"
#include "keystore/p11_internal.h"

enum { SLOTS_MAX = 256, NAMES_SHOWN = 4 };

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* A blank-padded CK_TOKEN_INFO field as a string without the padding. */
static void field_string(const CK_UTF8CHAR *field, size_t width, char *out)
{
    size_t n = width;
    while (n > 0 && (field[n - 1] == ' ' || field[n - 1] == '\0')) {
        n--;
    }
    memcpy(out, field, n);
    out[n] = '\0';
}

/* RFC 7512 section 2.3: an attribute left out of the URI matches any value. */
static int field_match(const CK_UTF8CHAR *field, size_t width, const char *want)
{
    char have[64];
    if (want == NULL) {
        return 1;
    }
    field_string(field, width, have);
    return strcmp(have, want) == 0;
}

static int token_matches(const ts_ks_uri *uri, const CK_TOKEN_INFO *info)
{
    return field_match(info->label, sizeof info->label, uri->token) &&
           field_match(info->manufacturerID, sizeof info->manufacturerID, uri->manufacturer) &&
           field_match(info->serialNumber, sizeof info->serialNumber, uri->serial) &&
           field_match(info->model, sizeof info->model, uri->model);
}

static void describe(const ts_ks_uri *uri, int ignore_slot, char *buf, size_t size)
{
    int n = snprintf(buf, size, "token '%s'", uri->token != NULL ? uri->token : "(any)");
    if (uri->serial != NULL && n > 0 && (size_t)n < size) {
        n += snprintf(buf + n, size - (size_t)n, ", serial %s", uri->serial);
    }
    if (uri->manufacturer != NULL && n > 0 && (size_t)n < size) {
        n += snprintf(buf + n, size - (size_t)n, ", manufacturer '%s'", uri->manufacturer);
    }
    if (uri->model != NULL && n > 0 && (size_t)n < size) {
        n += snprintf(buf + n, size - (size_t)n, ", model '%s'", uri->model);
    }
    if (!ignore_slot && uri->slot_id >= 0 && n > 0 && (size_t)n < size) {
        snprintf(buf + n, size - (size_t)n, " in slot %ld", uri->slot_id);
    }
}

/*
 * The slots that hold a token, re-read each time: SoftHSM2 renumbers them on C_InitToken. The
 * length is asked first, as PKCS#11 v2.40 section 5.5 has it; SoftHSM2 adds its next empty slot
 * only then.
 */
static ts_err slot_list(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID *slots, CK_ULONG *n)
{
    CK_ULONG count = 0;
    CK_RV rv = f->C_GetSlotList(CK_TRUE, NULL, &count);
    if (rv != CKR_OK) {
        return p11_error(rv, "C_GetSlotList");
    }
    *n = SLOTS_MAX;
    rv = f->C_GetSlotList(CK_TRUE, slots, n);
    if (rv == CKR_BUFFER_TOO_SMALL) {
        return ts_error_set(TS_ERR_UNSUPPORTED, "the module has more than %d slots", SLOTS_MAX);
    }
    return rv == CKR_OK ? TS_OK : p11_error(rv, "C_GetSlotList");
}

/*
 * The one initialised token that matches. None: TS_ERR_NO_TOKEN naming what was looked for and
 * what is there. Several: TS_ERR_URI, since using either could touch the wrong token.
 */
static ts_err find_token(CK_FUNCTION_LIST_PTR f, const ts_ks_uri *uri, int ignore_slot,
                         CK_SLOT_ID *slot, CK_TOKEN_INFO *found)
{
    CK_SLOT_ID slots[SLOTS_MAX];
    CK_ULONG n = 0;
    char seen[NAMES_SHOWN * 40 + 8] = "";
    char want[256];
    size_t matches = 0, shown = 0;
    ts_err rv = slot_list(f, slots, &n);

    if (rv != TS_OK) {
        return rv;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO info;
        if (!ignore_slot && uri->slot_id >= 0 && slots[i] != (CK_SLOT_ID)uri->slot_id) {
            continue;
        }
        if (f->C_GetTokenInfo(slots[i], &info) != CKR_OK ||
            (info.flags & CKF_TOKEN_INITIALIZED) == 0) {
            continue;
        }
        if (token_matches(uri, &info)) {
            if (matches++ == 0) {
                *slot = slots[i];
                *found = info;
            }
        } else if (shown < NAMES_SHOWN) {
            char label[P11_LABEL_FIELD + 1];
            size_t used = strlen(seen);
            field_string(info.label, sizeof info.label, label);
            snprintf(seen + used, sizeof seen - used, "%s'%s'", shown++ > 0 ? ", " : "", label);
        }
    }
    describe(uri, ignore_slot, want, sizeof want);
    if (matches == 0) {
        return ts_error_set(TS_ERR_NO_TOKEN, "no initialised PKCS#11 token matches %s (%s%s)", want,
                            shown > 0 ? "tokens present: " : "no other token present", seen);
    }
    if (matches > 1) {
        return ts_error_set(TS_ERR_URI,
                            "%zu tokens match %s: add token=, serial= or slot-id= to the URI",
                            matches, want);
    }
    return TS_OK;
}

/* The lock file of a token: one name for every process that opens it (docs/pkcs11.md). */
static ts_err lock_path(p11_store *st)
{
    const char *dir = secure_getenv("TESSERA_LOCK_DIR");
    const char *module = p11_module_path(st->module);
    uint8_t hash[32];
    char hex[33];
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    if (dir == NULL || dir[0] == '\0') {
        dir = "/tmp";
    }
    /* Serials are unique per module; a token without one is told apart by its label. */
    if (md == NULL || !EVP_DigestInit_ex(md, EVP_sha256(), NULL) ||
        !EVP_DigestUpdate(md, module, strlen(module) + 1) ||
        !EVP_DigestUpdate(md, st->serial, strlen(st->serial) + 1) ||
        (st->serial[0] == '\0' &&
         !EVP_DigestUpdate(md, st->token_label, strlen(st->token_label))) ||
        !EVP_DigestFinal_ex(md, hash, NULL)) {
        EVP_MD_CTX_free(md);
        return ts_error_set_openssl(TS_ERR_CRYPTO, "cannot name the token's lock file");
    }
    EVP_MD_CTX_free(md);
    for (size_t i = 0; i < 16; i++) {
        snprintf(hex + 2 * i, 3, "%02x", hash[i]);
    }
    int len = snprintf(st->lock_path, sizeof st->lock_path, "%s/tessera-p11-%s.lock", dir, hex);
    if (len < 0 || (size_t)len >= sizeof st->lock_path) {
        return ts_error_set(TS_ERR_INVALID, "TESSERA_LOCK_DIR is too long");
    }
    return TS_OK;
}

ts_err p11_usable(const p11_store *st)
{
    if (st->pid != getpid()) {
        return ts_error_set(TS_ERR_STATE,
                            "token '%s' was opened by the parent of this process: PKCS#11 sessions "
                            "do not cross fork(), open the store again",
                            st->token_label);
    }
    return TS_OK;
}

ts_err p11_lock(p11_store *st, int *fd)
{
    ts_err rv = ts_file_lock(st->lock_path, fd);
    return rv == TS_OK ? TS_OK
                       : ts_error_prefix(rv, "token '%s' (set TESSERA_LOCK_DIR to move the lock)",
                                         st->token_label);
}

void p11_unlock(int fd)
{
    ts_file_unlock(fd);
}

/*
 * find_token(), looking again a few times when the token is not there: a module that skipped a
 * token busy in another process at C_Initialize (SoftHSM2 does) sees it once initialised anew.
 */
static ts_err find_token_retry(p11_store *st, const ts_ks_uri *uri, int ignore_slot,
                               CK_TOKEN_INFO *info)
{
    ts_err rv = find_token(st->f, uri, ignore_slot, &st->slot, info);
    for (unsigned delay_ms = 10; rv == TS_ERR_NO_TOKEN && delay_ms <= 160; delay_ms *= 2) {
        if (!p11_module_rescan(st->module)) {
            break;
        }
        sleep_ms(delay_ms);
        rv = find_token(st->f, uri, ignore_slot, &st->slot, info);
    }
    return rv;
}

ts_err p11_store_open(p11_store *st, const ts_ks_uri *uri, int ignore_slot)
{
    CK_TOKEN_INFO info;
    ts_err rv = find_token_retry(st, uri, ignore_slot, &info);

    if (rv != TS_OK) {
        return rv;
    }
    field_string(info.label, sizeof info.label, st->token_label);
    field_string(info.serialNumber, sizeof info.serialNumber, st->serial);
    rv = lock_path(st);
    if (rv != TS_OK) {
        return rv;
    }
    CK_RV crv = st->f->C_OpenSession(st->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                                     &st->session);
    if (crv != CKR_OK) {
        st->session = CK_INVALID_HANDLE;
        return p11_error(crv, "token '%s': C_OpenSession (read-write)", st->token_label);
    }
    int protected_path = (info.flags & CKF_PROTECTED_AUTHENTICATION_PATH) != 0;
    if (uri->pin == NULL && !protected_path) {
        if ((info.flags & CKF_LOGIN_REQUIRED) != 0) {
            return ts_error_set(TS_ERR_PIN,
                                "token '%s' needs a PIN: add pin-value= or pin-source= to the URI "
                                "or set TESSERA_PIN",
                                st->token_label);
        }
        return TS_OK;
    }
    rv = p11_module_login(st->module, st->slot, st->session, uri->pin, protected_path);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "token '%s'", st->token_label);
    }
    st->logged_in = 1;
    return TS_OK;
}

void p11_store_close(p11_store *st)
{
    if (st == NULL) {
        return;
    }
    /* A store inherited over fork() holds sessions of the parent: its handles may name the
     * child's own sessions now, so the module is not called for it. */
    int inherited = st->pid != getpid();
    if (st->session != CK_INVALID_HANDLE && !inherited) {
        if (st->logged_in) {
            p11_module_logout(st->module, st->slot, st->session);
        }
        st->f->C_CloseSession(st->session);
    }
    p11_module_put(st->module, inherited);
    OPENSSL_cleanse(st, sizeof *st);
    OPENSSL_free(st);
}

/* The slot to initialise: slot-id, else the first whose token is not initialised. */
static ts_err pick_fresh_slot(CK_FUNCTION_LIST_PTR f, const ts_ks_uri *uri, CK_SLOT_ID *slot)
{
    CK_SLOT_ID slots[SLOTS_MAX];
    CK_ULONG n = 0;
    CK_TOKEN_INFO info;
    ts_err rv = slot_list(f, slots, &n);

    if (rv != TS_OK) {
        return rv;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        if (uri->slot_id >= 0 && slots[i] != (CK_SLOT_ID)uri->slot_id) {
            continue;
        }
        if (f->C_GetTokenInfo(slots[i], &info) != CKR_OK) {
            continue;
        }
        if ((info.flags & CKF_TOKEN_INITIALIZED) == 0) {
            *slot = slots[i];
            return TS_OK;
        }
        if (uri->slot_id >= 0) {
            char label[P11_LABEL_FIELD + 1];
            field_string(info.label, sizeof info.label, label);
            /* C_InitToken on it would erase every object of that token. */
            return ts_error_set(TS_ERR_EXISTS,
                                "slot %ld already holds the initialised token '%s'; it is not "
                                "initialised again",
                                uri->slot_id, label);
        }
    }
    if (uri->slot_id >= 0) {
        return ts_error_set(TS_ERR_NO_TOKEN, "slot %ld has no token", uri->slot_id);
    }
    return ts_error_set(TS_ERR_NO_TOKEN,
                        "no slot has an uninitialised token to create '%s' in (with SoftHSM2, "
                        "check SOFTHSM2_CONF and its tokendir)",
                        uri->token);
}

/* SO login, C_InitPIN with the user PIN, logout: PKCS#11 v2.40 section 5.6. */
static ts_err set_user_pin(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID slot, const ts_ks_uri *uri,
                           const char *so_pin)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    ts_err rv = TS_OK;
    CK_RV crv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);

    if (crv != CKR_OK) {
        return p11_error(crv, "token '%s': C_OpenSession", uri->token);
    }
    crv = f->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)so_pin, (CK_ULONG)strlen(so_pin));
    if (crv != CKR_OK) {
        rv = p11_error(crv, "token '%s': C_Login as security officer", uri->token);
        goto done;
    }
    crv = f->C_InitPIN(s, (CK_UTF8CHAR_PTR)uri->pin, (CK_ULONG)strlen(uri->pin));
    if (crv != CKR_OK) {
        rv = p11_error(crv, "token '%s': C_InitPIN", uri->token);
    }
    f->C_Logout(s);
done:
    f->C_CloseSession(s);
    return rv;
}

ts_err p11_token_init(CK_FUNCTION_LIST_PTR f, const ts_ks_uri *uri, const char *so_pin)
{
    ts_ks_uri by_label;
    CK_TOKEN_INFO info;
    CK_SLOT_ID slot = 0;
    CK_UTF8CHAR label[P11_LABEL_FIELD];

    if (uri->token == NULL) {
        return ts_error_set(TS_ERR_INVALID,
                            "creating a PKCS#11 store needs a token label: add token=NAME");
    }
    if (uri->pin == NULL) {
        return ts_error_set(TS_ERR_PIN,
                            "creating token '%s' needs a user PIN: add pin-value= or "
                            "pin-source= to the URI or set TESSERA_PIN",
                            uri->token);
    }
    if (so_pin == NULL || so_pin[0] == '\0') {
        return ts_error_set(TS_ERR_PIN, "creating token '%s' needs a security officer (SO) PIN",
                            uri->token);
    }
    memset(&by_label, 0, sizeof by_label);
    by_label.token = uri->token;
    by_label.slot_id = -1;
    ts_err rv = find_token(f, &by_label, 1, &slot, &info);
    if (rv == TS_OK && (info.flags & CKF_USER_PIN_INITIALIZED) != 0) {
        return ts_error_set(TS_ERR_EXISTS, "a token labelled '%s' is already initialised",
                            uri->token);
    }
    if (rv == TS_OK) {
        /* Initialised before, but its user PIN never set (a creation cut short): finish it. */
        return set_user_pin(f, slot, uri, so_pin);
    }
    if (rv != TS_ERR_NO_TOKEN) {
        return rv;
    }
    rv = pick_fresh_slot(f, uri, &slot);
    if (rv != TS_OK) {
        return rv;
    }
    memset(label, ' ', sizeof label);
    memcpy(label, uri->token, strlen(uri->token));
    CK_RV crv = f->C_InitToken(slot, (CK_UTF8CHAR_PTR)so_pin, (CK_ULONG)strlen(so_pin), label);
    if (crv != CKR_OK) {
        return p11_create_error(crv, 0, "C_InitToken '%s' in slot %lu", uri->token,
                                (unsigned long)slot);
    }
    /* SoftHSM2 moves an initialised token to a new slot id: find it again by its label. */
    rv = find_token(f, &by_label, 1, &slot, &info);
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "token '%s' was initialised but is not found again", uri->token);
    }
    return set_user_pin(f, slot, uri, so_pin);
}
