/*
 * The datastore's insides: the in-memory content (datastore_content.c), the on-disk format and
 * its MAC (datastore_format.c), the slots and the handle (datastore.c, datastore_txn.c).
 */
#ifndef TS_AGENT_DATASTORE_INTERNAL_H
#define TS_AGENT_DATASTORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tessera/datastore.h"

enum {
    TS_DS_MAC_KEY_LEN = 32, /* HMAC-SHA256 key */
    TS_DS_MAC_LEN = 32,     /* HMAC-SHA256 tag */
    /* A file may not be larger than its values, names and their DER framing can make it. */
    TS_DS_FILE_MAX =
        TS_DATASTORE_TOTAL_MAX + TS_DATASTORE_ENTRIES_MAX * (TS_DATASTORE_NAME_MAX + 32) + 256,
};

typedef struct ts_ds_entry {
    char name[TS_DATASTORE_NAME_MAX + 1];
    ts_datastore_type type;
    uint8_t *value; /* len bytes and a NUL; never NULL */
    size_t len;
} ts_ds_entry;

/* One generation: entries sorted by name, names unique. */
typedef struct ts_ds_content {
    uint64_t version;
    uint8_t uid[TS_KEYSTORE_UID_LEN];
    uint64_t generation;
    ts_ds_entry *entries;
    size_t count;
    size_t total; /* bytes of all values */
} ts_ds_content;

/* --- content (datastore_content.c) ------------------------------------------------------------ */

ts_ds_content *ts_ds_content_new(void);
void ts_ds_content_free(ts_ds_content *c);
TS_MUST_CHECK ts_err ts_ds_content_copy(const ts_ds_content *c, ts_ds_content **out);

/* The entry of name, or NULL. */
const ts_ds_entry *ts_ds_content_find(const ts_ds_content *c, const char *name);

/* Sets (replaces) an entry; the value is checked for its type unless the entry is still open to
 * appends (TEXT is checked at commit by ts_ds_content_check). */
TS_MUST_CHECK ts_err ts_ds_content_set(ts_ds_content *c, const char *name, ts_datastore_type type,
                                       const uint8_t *value, size_t len);
TS_MUST_CHECK ts_err ts_ds_content_append(ts_ds_content *c, const char *name, const uint8_t *chunk,
                                          size_t len);
TS_MUST_CHECK ts_err ts_ds_content_remove(ts_ds_content *c, const char *name);

/* Every rule of a stored generation: names, order, types, values, limits. TS_ERR_CORRUPT for a
 * parsed file (what says which), TS_ERR_INVALID for a transaction. */
TS_MUST_CHECK ts_err ts_ds_content_check(const ts_ds_content *c, ts_err code, const char *what);

/* 1 when name is a valid entry name. */
int ts_ds_name_ok(const char *name, size_t len);

/* Checks value for type; 1 when it fits. */
int ts_ds_value_ok(ts_datastore_type type, const uint8_t *value, size_t len);

/* --- format (datastore_format.c) -------------------------------------------------------------- */

/*
 * DER of c with its MAC under mac_key. *der is freed with OPENSSL_free().
 */
TS_MUST_CHECK ts_err ts_ds_encode(const ts_ds_content *c, const uint8_t mac_key[TS_DS_MAC_KEY_LEN],
                                  uint8_t **der, size_t *der_len);

/*
 * Parses untrusted bytes strictly (DER only, no trailing bytes, every content rule): TS_ERR_CORRUPT
 * or TS_ERR_UNSUPPORTED (another format version) otherwise. Does not verify the MAC: mac gets the
 * stored tag and *tbs the DER the tag covers (freed with OPENSSL_free()).
 */
TS_MUST_CHECK ts_err ts_ds_parse(const uint8_t *der, size_t der_len, ts_ds_content **out,
                                 uint8_t mac[TS_DS_MAC_LEN], uint8_t **tbs, size_t *tbs_len);

/*
 * Parses and verifies a slot file for the store with uid under mac_key: TS_ERR_FOREIGN when it
 * names another store, TS_ERR_AUTH when the MAC does not verify, and the parser's errors.
 */
TS_MUST_CHECK ts_err ts_ds_decode(const uint8_t *der, size_t der_len,
                                  const uint8_t uid[TS_KEYSTORE_UID_LEN],
                                  const uint8_t mac_key[TS_DS_MAC_KEY_LEN], ts_ds_content **out);

/* HMAC-SHA256 of data under key. */
TS_MUST_CHECK ts_err ts_ds_mac(const uint8_t key[TS_DS_MAC_KEY_LEN], const uint8_t *data,
                               size_t len, uint8_t mac[TS_DS_MAC_LEN]);

/* The MAC key of a key store: see datastore_key.c. */
TS_MUST_CHECK ts_err ts_ds_mac_key(ts_keystore *ks, const uint8_t uid[TS_KEYSTORE_UID_LEN],
                                   uint8_t key[TS_DS_MAC_KEY_LEN]);

#endif
