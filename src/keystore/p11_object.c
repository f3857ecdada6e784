/*
 * Objects on the token: lookup by label, creation that notices a full token, the UID object,
 * data objects and counters.
 *
 * Data objects and counters are never rewritten in place. PKCS#11 lets a module refuse to change
 * CKA_VALUE (SoftHSM2 does: CKR_ATTRIBUTE_READ_ONLY), and a module that rewrites an object's file
 * in place can leave it cut short when the disk is full or power fails. A new value is therefore
 * a new object, and the old one is destroyed after it exists:
 *  - a data object's CKA_APPLICATION carries a generation, "tessera", "tessera.1", "tessera.2"
 *    in a cycle; when a crash leaves two, the one whose generation follows the other's is newer;
 *  - a counter's value is the largest of its objects, so a left-over older one changes nothing.
 */
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>

#include "keystore/p11_internal.h"

static const char *const data_apps[3] = {P11_APP_DATA, P11_APP_DATA ".1", P11_APP_DATA ".2"};

static CK_BBOOL ck_true = CK_TRUE;
static CK_BBOOL ck_false = CK_FALSE;

static int no_room(int err)
{
    return err == EFBIG || err == ENOSPC || err == EDQUOT;
}

ts_err p11_create(p11_store *st, CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out,
                  const char *what)
{
    *out = CK_INVALID_HANDLE;
    errno = 0;
    CK_RV rv = st->f->C_CreateObject(st->session, tmpl, n, out);
    int err = errno;
    if (rv == CKR_OK && !no_room(err)) {
        return TS_OK;
    }
    if (rv == CKR_OK) {
        /* Created in memory but not stored: remove it, or it would come back half-written. */
        st->f->C_DestroyObject(st->session, *out);
        *out = CK_INVALID_HANDLE;
    }
    return p11_create_error(rv, err, "%s on token '%s'", what, st->token_label);
}

ts_err p11_get_attr(p11_store *st, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, uint8_t **out,
                    size_t *len, size_t max)
{
    CK_ATTRIBUTE a = ATTR(type, NULL, 0);

    *out = NULL;
    *len = 0;
    CK_RV rv = st->f->C_GetAttributeValue(st->session, h, &a, 1);
    if (rv != CKR_OK) {
        return p11_error(rv, "C_GetAttributeValue 0x%lx", (unsigned long)type);
    }
    if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > max) {
        return ts_error_set(TS_ERR_CORRUPT, "attribute 0x%lx of an object on token '%s' is %s",
                            (unsigned long)type, st->token_label,
                            a.ulValueLen == CK_UNAVAILABLE_INFORMATION ? "unreadable"
                                                                       : "larger than expected");
    }
    size_t size = a.ulValueLen > 0 ? a.ulValueLen : 1;
    a.pValue = OPENSSL_malloc(size);
    if (a.pValue == NULL) {
        return ts_error_set(TS_ERR_NOMEM, "out of memory reading an object");
    }
    rv = st->f->C_GetAttributeValue(st->session, h, &a, 1);
    if (rv != CKR_OK || a.ulValueLen > size) {
        OPENSSL_clear_free(a.pValue, size);
        return p11_error(rv, "C_GetAttributeValue 0x%lx", (unsigned long)type);
    }
    *out = a.pValue;
    *len = a.ulValueLen;
    return TS_OK;
}

p11_kind p11_classify(p11_store *st, CK_OBJECT_HANDLE h, int *generation)
{
    CK_OBJECT_CLASS cls = 0;
    char app[32];
    CK_ATTRIBUTE a = ATTR(CKA_CLASS, &cls, sizeof cls);

    *generation = 0;
    if (st->f->C_GetAttributeValue(st->session, h, &a, 1) != CKR_OK) {
        return P11_OTHER;
    }
    if (cls == CKO_PRIVATE_KEY || cls == CKO_PUBLIC_KEY) {
        return cls == CKO_PRIVATE_KEY ? P11_PRIV : P11_PUB;
    }
    CK_ATTRIBUTE b = ATTR(CKA_APPLICATION, app, sizeof app - 1);
    if (cls != CKO_DATA || st->f->C_GetAttributeValue(st->session, h, &b, 1) != CKR_OK ||
        b.ulValueLen >= sizeof app) {
        return P11_OTHER;
    }
    app[b.ulValueLen] = '\0';
    for (int g = 0; g < 3; g++) {
        if (strcmp(app, data_apps[g]) == 0) {
            *generation = g;
            return P11_DATA;
        }
    }
    if (strcmp(app, P11_APP_COUNTER) == 0) {
        return P11_COUNTER;
    }
    return strcmp(app, P11_APP_UID) == 0 ? P11_UID : P11_OTHER;
}

/* C_FindObjects over a template; at most max handles, TS_ERR_CORRUPT when there are more. */
static ts_err find(p11_store *st, CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out, size_t max,
                   size_t *count)
{
    CK_ULONG got = 0;

    *count = 0;
    CK_RV rv = st->f->C_FindObjectsInit(st->session, tmpl, n);
    if (rv != CKR_OK) {
        return p11_error(rv, "C_FindObjectsInit on token '%s'", st->token_label);
    }
    rv = st->f->C_FindObjects(st->session, out, (CK_ULONG)max, &got);
    CK_OBJECT_HANDLE extra;
    CK_ULONG more = 0;
    if (rv == CKR_OK && got == max) {
        rv = st->f->C_FindObjects(st->session, &extra, 1, &more);
    }
    st->f->C_FindObjectsFinal(st->session);
    if (rv != CKR_OK) {
        return p11_error(rv, "C_FindObjects on token '%s'", st->token_label);
    }
    if (more > 0 || got > max) {
        return ts_error_set(TS_ERR_CORRUPT, "more than %zu objects match on token '%s'", max,
                            st->token_label);
    }
    *count = got;
    return TS_OK;
}

ts_err p11_find_label(p11_store *st, const char *label, p11_found *found, size_t *count)
{
    CK_OBJECT_HANDLE h[P11_LABEL_OBJECTS];
    CK_ATTRIBUTE tmpl[] = {ATTR(CKA_LABEL, label, strlen(label))};
    ts_err rv = p11_usable(st);

    *count = 0;
    if (rv == TS_OK) {
        rv = find(st, tmpl, 1, h, P11_LABEL_OBJECTS, count);
    }

    for (size_t i = 0; rv == TS_OK && i < *count; i++) {
        found[i].handle = h[i];
        found[i].kind = p11_classify(st, h[i], &found[i].generation);
    }
    return rv;
}

static int kind_rank(p11_kind kind)
{
    switch (kind) {
    case P11_PRIV:
    case P11_PUB:
        return 4;
    case P11_DATA:
        return 3;
    case P11_COUNTER:
        return 2;
    case P11_OTHER:
        return 1;
    default:
        return 0;
    }
}

p11_kind p11_label_kind(const p11_found *found, size_t count)
{
    p11_kind kind = P11_NONE;
    /* Should a label name several kinds (other tools do not keep Tessera's rule of one label,
     * one object), the key wins, then data, then a counter. */
    for (size_t i = 0; i < count; i++) {
        if (kind_rank(found[i].kind) > kind_rank(kind)) {
            kind = found[i].kind == P11_PUB ? P11_PRIV : found[i].kind;
        }
    }
    return kind;
}

const char *p11_kind_name(p11_kind kind)
{
    switch (kind) {
    case P11_PRIV:
    case P11_PUB:
        return "a key";
    case P11_DATA:
        return "a data object";
    case P11_COUNTER:
        return "a counter";
    default:
        return "an object of another application";
    }
}

/* --- UID ----------------------------------------------------------------------------------- */

static ts_err uid_find(p11_store *st, int *have)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_OBJECT_HANDLE h[4];
    size_t n = 0;
    CK_ATTRIBUTE tmpl[] = {ATTR(CKA_CLASS, &cls, sizeof cls),
                           ATTR(CKA_APPLICATION, P11_APP_UID, strlen(P11_APP_UID))};
    ts_err rv = find(st, tmpl, 2, h, 4, &n);

    *have = 0;
    /* Made under the token's lock there is one; should there be more, all agree on the least. */
    for (size_t i = 0; rv == TS_OK && i < n; i++) {
        uint8_t *v = NULL;
        size_t len = 0;
        rv = p11_get_attr(st, h[i], CKA_VALUE, &v, &len, 64);
        if (rv == TS_OK && len != TS_KEYSTORE_UID_LEN) {
            rv = ts_error_set(TS_ERR_CORRUPT, "the UID object on token '%s' is %zu bytes",
                              st->token_label, len);
        }
        if (rv == TS_OK && (!*have || memcmp(v, st->uid, TS_KEYSTORE_UID_LEN) < 0)) {
            memcpy(st->uid, v, TS_KEYSTORE_UID_LEN);
            *have = 1;
        }
        OPENSSL_free(v);
    }
    return rv;
}

ts_err p11_uid_load(p11_store *st, int create)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_OBJECT_HANDLE h;
    int have = 0, fd = -1;
    ts_err rv = uid_find(st, &have);

    if (rv != TS_OK || have) {
        return rv;
    }
    if (!create) {
        return ts_error_set(TS_ERR_CORRUPT, "token '%s' has no UID object", st->token_label);
    }
    /* A token initialised with other tools: give it a UID, once, whoever opens it first. */
    rv = p11_lock(st, &fd);
    if (rv == TS_OK) {
        rv = uid_find(st, &have);
    }
    if (rv == TS_OK && !have) {
        rv = p11_random(st, st->uid, sizeof st->uid);
    }
    if (rv == TS_OK && !have) {
        CK_ATTRIBUTE tmpl[] = {
            ATTR(CKA_CLASS, &cls, sizeof cls),
            ATTR(CKA_TOKEN, &ck_true, 1),
            ATTR(CKA_PRIVATE, &ck_false, 1),
            ATTR(CKA_MODIFIABLE, &ck_false, 1),
            ATTR(CKA_APPLICATION, P11_APP_UID, strlen(P11_APP_UID)),
            ATTR(CKA_VALUE, st->uid, sizeof st->uid),
        };
        rv = p11_create(st, tmpl, sizeof tmpl / sizeof tmpl[0], &h, "creating the UID object");
    }
    p11_unlock(fd);
    return rv;
}

/* --- data objects -------------------------------------------------------------------------- */

/*
 * The current data object among found: the only one, or of two the one whose generation follows
 * the other's. *older gets the superseded one, or CK_INVALID_HANDLE.
 */
static ts_err data_current(p11_store *st, const char *label, const p11_found *found, size_t n,
                           const p11_found **current, CK_OBJECT_HANDLE *older)
{
    const p11_found *d[2] = {NULL, NULL};
    size_t nd = 0;

    *current = NULL;
    *older = CK_INVALID_HANDLE;
    for (size_t i = 0; i < n; i++) {
        if (found[i].kind == P11_DATA) {
            if (nd == 2) {
                nd = 3;
                break;
            }
            d[nd++] = &found[i];
        }
    }
    if (nd == 1) {
        *current = d[0];
    } else if (nd == 2 && (d[0]->generation + 1) % 3 == d[1]->generation) {
        *current = d[1];
        *older = d[0]->handle;
    } else if (nd == 2 && (d[1]->generation + 1) % 3 == d[0]->generation) {
        *current = d[0];
        *older = d[1]->handle;
    } else if (nd > 1) {
        return ts_error_set(TS_ERR_CORRUPT,
                            "token '%s' holds %zu unordered data objects labelled '%s': delete "
                            "the label and write it again",
                            st->token_label, nd, label);
    }
    return TS_OK;
}

ts_err p11_object_put(void *state, const char *label, const uint8_t *data, size_t len,
                      unsigned flags, int replace)
{
    p11_store *st = state;
    p11_found found[P11_LABEL_OBJECTS];
    const p11_found *current = NULL;
    CK_OBJECT_HANDLE older = CK_INVALID_HANDLE, h;
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL secret = (flags & TS_DATA_SECRET) != 0 ? CK_TRUE : CK_FALSE;
    size_t n = 0;
    ts_err rv = p11_find_label(st, label, found, &n);

    if (rv != TS_OK) {
        return rv;
    }
    p11_kind kind = p11_label_kind(found, n);
    if (kind != P11_NONE && (!replace || kind != P11_DATA)) {
        return ts_error_set(replace ? TS_ERR_WRONG_TYPE : TS_ERR_EXISTS,
                            "label '%s' is taken by %s on token '%s'", label, p11_kind_name(kind),
                            st->token_label);
    }
    rv = data_current(st, label, found, n, &current, &older);
    if (rv != TS_OK) {
        return rv;
    }
    if (older != CK_INVALID_HANDLE) {
        /* Left by a replace cut short: superseded, and in the way of the next generation. */
        st->f->C_DestroyObject(st->session, older);
    }
    int generation = current != NULL ? (current->generation + 1) % 3 : 0;
    CK_ATTRIBUTE tmpl[] = {
        ATTR(CKA_CLASS, &cls, sizeof cls),
        ATTR(CKA_TOKEN, &ck_true, 1),
        ATTR(CKA_PRIVATE, &secret, 1),
        ATTR(CKA_MODIFIABLE, &ck_true, 1),
        ATTR(CKA_LABEL, label, strlen(label)),
        ATTR(CKA_APPLICATION, data_apps[generation], strlen(data_apps[generation])),
        ATTR(CKA_VALUE, data, len),
    };
    rv = p11_create(st, tmpl, sizeof tmpl / sizeof tmpl[0], &h, "storing data object");
    if (rv != TS_OK) {
        return ts_error_prefix(rv, "'%s'", label);
    }
    /* The new object is current from here on, whether or not the old one goes away now. */
    if (current != NULL) {
        st->f->C_DestroyObject(st->session, current->handle);
    }
    return TS_OK;
}

ts_err p11_object_get(void *state, const char *label, uint8_t **data, size_t *len)
{
    p11_store *st = state;
    p11_found found[P11_LABEL_OBJECTS];
    const p11_found *current = NULL;
    CK_OBJECT_HANDLE older;
    size_t n = 0;
    ts_err rv = p11_find_label(st, label, found, &n);

    if (rv != TS_OK) {
        return rv;
    }
    p11_kind kind = p11_label_kind(found, n);
    if (kind == P11_NONE) {
        return ts_error_set(TS_ERR_NOT_FOUND, "no object '%s' on token '%s'", label,
                            st->token_label);
    }
    if (kind != P11_DATA) {
        return ts_error_set(TS_ERR_WRONG_TYPE, "'%s' on token '%s' is %s, not a data object", label,
                            st->token_label, p11_kind_name(kind));
    }
    rv = data_current(st, label, found, n, &current, &older);
    if (rv == TS_OK) {
        rv = p11_get_attr(st, current->handle, CKA_VALUE, data, len, TS_OBJECT_MAX);
    }
    return rv;
}

ts_err p11_remove(void *state, const char *label)
{
    p11_store *st = state;
    p11_found found[P11_LABEL_OBJECTS];
    size_t n = 0;
    ts_err rv = p11_find_label(st, label, found, &n);

    if (rv != TS_OK) {
        return rv;
    }
    p11_kind kind = p11_label_kind(found, n);
    if (kind == P11_NONE) {
        return ts_error_set(TS_ERR_NOT_FOUND, "no object '%s' on token '%s'", label,
                            st->token_label);
    }
    if (kind != P11_PRIV && kind != P11_DATA) {
        return ts_error_set(TS_ERR_WRONG_TYPE, "'%s' on token '%s' is %s: it cannot be deleted",
                            label, st->token_label, p11_kind_name(kind));
    }
    p11_key_forget(st, label);
    /* Private half first: a cut-short delete leaves a harmless public key, never a lone secret. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            p11_kind k = found[i].kind;
            int mine = kind == P11_DATA ? (k == P11_DATA && pass == 0)
                                        : (k == (pass == 0 ? P11_PRIV : P11_PUB));
            if (!mine) {
                continue;
            }
            CK_RV crv = st->f->C_DestroyObject(st->session, found[i].handle);
            if (crv != CKR_OK) {
                return p11_error(crv, "C_DestroyObject '%s' on token '%s'", label, st->token_label);
            }
        }
    }
    return TS_OK;
}
