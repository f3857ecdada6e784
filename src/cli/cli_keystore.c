/*
 * tessera keystore: create a store, generate keys, list, export public keys, delete, counters.
 * Data objects are in cli_keystore_data.c, CSRs in cli_keystore_csr.c.
 *
 * Every value on the command line is checked before the store is opened, so a bad one changes
 * nothing and costs no PIN attempt.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "cli/cli_internal.h"
#include "common/error_internal.h"

const char *cli_keystore_uri(const cli_args *args)
{
    const char *uri = cli_opt_value(args, "keystore");
    if (uri == NULL) {
        uri = getenv("TESSERA_KEYSTORE");
    }
    return uri != NULL && uri[0] != '\0' ? uri : NULL;
}

int cli_keystore_check_label(const cli_args *args, const char *label)
{
    if (ts_label_check(label) != TS_OK) {
        return cli_usage_error(args, "--label: %s", ts_error_message());
    }
    return CLI_EXIT_OK;
}

/* Says that it was the URI that was wrong when the message does not already. */
static int fail_store(ts_err rv)
{
    if (rv == TS_ERR_URI && strstr(ts_error_message(), "URI") == NULL) {
        ts_error_prefix(rv, "bad key-store URI");
    }
    return cli_fail();
}

int cli_keystore_open(const cli_args *args, ts_keystore **ks)
{
    const char *uri = cli_keystore_uri(args);
    ts_err rv;

    *ks = NULL;
    if (uri == NULL) {
        return cli_usage_error(args, "no key store: give --keystore URI or set TESSERA_KEYSTORE");
    }
    rv = ts_keystore_open(uri, ks);
    return rv == TS_OK ? CLI_EXIT_OK : fail_store(rv);
}

ts_err cli_keystore_uid_hex(ts_keystore *ks, char hex[2 * TS_KEYSTORE_UID_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    uint8_t uid[TS_KEYSTORE_UID_LEN];
    ts_err rv = ts_keystore_uid(ks, uid);
    if (rv != TS_OK) {
        return rv;
    }
    for (size_t i = 0; i < sizeof uid; i++) {
        hex[2 * i] = digits[uid[i] >> 4];
        hex[2 * i + 1] = digits[uid[i] & 0x0f];
    }
    hex[2 * sizeof uid] = '\0';
    return TS_OK;
}

/* A public key as PEM (SubjectPublicKeyInfo), to path or stdout. Public material: 0644. */
static ts_err write_public_pem(ts_keystore *ks, const char *label, const char *path)
{
    EVP_PKEY *pub = NULL;
    BIO *mem = NULL;
    ts_err rv = ts_keystore_public_key(ks, label, &pub);
    if (rv != TS_OK) {
        return rv;
    }
    mem = BIO_new(BIO_s_mem());
    if (mem == NULL || PEM_write_bio_PUBKEY(mem, pub) != 1) {
        rv = ts_error_set_openssl(TS_ERR_CRYPTO, "cannot encode the public key of '%s'", label);
        goto done;
    }
    rv = cli_write_bio(path, mem, 0644);
done:
    BIO_free(mem);
    EVP_PKEY_free(pub);
    return rv;
}

/* --- init ------------------------------------------------------------------------------------ */

static int cmd_init(const cli_args *args)
{
    const char *uri = cli_keystore_uri(args);
    const char *so_pin = cli_opt_value(args, "so-pin");
    char hex[2 * TS_KEYSTORE_UID_LEN + 1];
    ts_keystore *ks = NULL;
    int status = CLI_EXIT_FAIL;

    if (uri == NULL) {
        return cli_usage_error(args, "no key store: give --keystore URI or set TESSERA_KEYSTORE");
    }
    if (so_pin == NULL) {
        so_pin = getenv("TESSERA_SO_PIN");
    }
    /* PKCS#11 section 5.6, C_InitToken: a token is initialised with a security officer PIN. */
    if (strncmp(uri, "pkcs11:", 7) == 0 && (so_pin == NULL || so_pin[0] == '\0')) {
        return cli_usage_error(args, "a pkcs11: store needs --so-pin PIN or TESSERA_SO_PIN");
    }
    ts_err rv = ts_keystore_create(uri, so_pin, &ks);
    if (rv != TS_OK) {
        return fail_store(rv);
    }
    if (cli_keystore_uid_hex(ks, hex) != TS_OK) {
        status = cli_fail();
        goto done;
    }
    printf("%s\n", hex);
    status = CLI_EXIT_OK;
done:
    ts_keystore_free(ks);
    return status;
}

/* --- genkey ---------------------------------------------------------------------------------- */

static int cmd_genkey(const cli_args *args)
{
    const char *label = cli_opt_value(args, "label");
    const char *curve_name = cli_opt_value(args, "curve");
    ts_curve curve = TS_CURVE_P256;
    ts_keystore *ks = NULL;
    int status = cli_keystore_check_label(args, label);

    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (curve_name != NULL && ts_curve_from_name(curve_name, &curve) != TS_OK) {
        return cli_usage_error(args, "--curve: %s", ts_error_message());
    }
    status = cli_keystore_open(args, &ks);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    status = CLI_EXIT_FAIL;
    if (ts_keystore_generate(ks, label, curve) != TS_OK) {
        status = cli_fail();
        goto done;
    }
    if (write_public_pem(ks, label, cli_opt_value(args, "out")) != TS_OK) {
        status = cli_fail();
        goto done;
    }
    status = CLI_EXIT_OK;
done:
    ts_keystore_free(ks);
    return status;
}

/* --- list ------------------------------------------------------------------------------------ */

static const char *kind_name(ts_object_kind kind)
{
    switch (kind) {
    case TS_KIND_KEY:
        return "key";
    case TS_KIND_DATA:
        return "data";
    case TS_KIND_COUNTER:
        return "counter";
    }
    return "?";
}

ts_err cli_keystore_print_list(ts_keystore *ks, FILE *out, const char *indent)
{
    ts_keystore_entry *entries = NULL;
    size_t count = 0;
    char hex[2 * TS_KEYSTORE_UID_LEN + 1];
    ts_err rv = cli_keystore_uid_hex(ks, hex);

    if (rv != TS_OK) {
        return rv;
    }
    rv = ts_keystore_list(ks, &entries, &count);
    if (rv != TS_OK) {
        return rv;
    }
    fprintf(out, "%sstore:   %s (%s)\n", indent, ts_keystore_uri(ks), ts_keystore_backend(ks));
    fprintf(out, "%suid:     %s\n", indent, hex);
    fprintf(out, "%sobjects: %zu\n", indent, count);
    if (count > 0) {
        fprintf(out, "%s%-24s %-8s %-20s %s\n", indent, "LABEL", "KIND", "DETAIL", "FLAGS");
    }
    for (size_t i = 0; i < count; i++) {
        const ts_keystore_entry *e = &entries[i];
        char detail[32];
        const char *flags = "-";
        switch (e->kind) {
        case TS_KIND_KEY:
            /* Keys are made inside the store and no call exports them in clear; a backup key
             * can only leave wrapped under a fresh key-encryption key (docs/ceremony.md). */
            snprintf(detail, sizeof detail, "%s", ts_curve_name(e->curve));
            flags = (e->flags & TS_KEY_BACKUP) != 0 ? "private,wrap-only-backup"
                                                    : "private,non-exportable";
            break;
        case TS_KIND_DATA:
            snprintf(detail, sizeof detail, "%zu bytes", e->size);
            flags = (e->flags & TS_DATA_SECRET) != 0 ? "secret" : "-";
            break;
        case TS_KIND_COUNTER:
            snprintf(detail, sizeof detail, "%llu", (unsigned long long)e->value);
            break;
        default:
            snprintf(detail, sizeof detail, "-");
            break;
        }
        fprintf(out, "%s%-24s %-8s %-20s %s\n", indent, e->label, kind_name(e->kind), detail,
                flags);
    }
    OPENSSL_free(entries);
    if (fflush(out) != 0) {
        return ts_error_set(TS_ERR_IO, "cannot write the list");
    }
    return TS_OK;
}

static int cmd_list(const cli_args *args)
{
    ts_keystore *ks = NULL;
    int status = cli_keystore_open(args, &ks);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    status = cli_keystore_print_list(ks, stdout, "") == TS_OK ? CLI_EXIT_OK : cli_fail();
    ts_keystore_free(ks);
    return status;
}

/* --- pubkey ---------------------------------------------------------------------------------- */

static int cmd_pubkey(const cli_args *args)
{
    const char *label = cli_opt_value(args, "label");
    ts_keystore *ks = NULL;
    int status = cli_keystore_check_label(args, label);

    if (status != CLI_EXIT_OK) {
        return status;
    }
    status = cli_keystore_open(args, &ks);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    status =
        write_public_pem(ks, label, cli_opt_value(args, "out")) == TS_OK ? CLI_EXIT_OK : cli_fail();
    ts_keystore_free(ks);
    return status;
}

/* --- delete ---------------------------------------------------------------------------------- */

static int cmd_delete(const cli_args *args)
{
    const char *label = cli_opt_value(args, "label");
    ts_keystore *ks = NULL;
    int status = cli_keystore_check_label(args, label);

    if (status != CLI_EXIT_OK) {
        return status;
    }
    status = cli_keystore_open(args, &ks);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    status = ts_keystore_delete(ks, label) == TS_OK ? CLI_EXIT_OK : cli_fail();
    ts_keystore_free(ks);
    return status;
}

/* --- counter --------------------------------------------------------------------------------- */

static int cmd_counter(const cli_args *args)
{
    const char *label = cli_opt_value(args, "label");
    const char *raise = cli_opt_value(args, "raise");
    int increment = cli_opt_given(args, "increment");
    uint64_t value = 0;
    ts_keystore *ks = NULL;
    ts_err rv;
    int status = cli_keystore_check_label(args, label);

    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (increment && raise != NULL) {
        return cli_usage_error(args, "give --increment or --raise, not both");
    }
    if (raise != NULL && cli_parse_u64(raise, &value) != 0) {
        return cli_usage_error(args, "--raise: '%s' is not a number from 0 to %llu", raise,
                               (unsigned long long)UINT64_MAX);
    }
    status = cli_keystore_open(args, &ks);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    if (increment) {
        rv = ts_keystore_counter_increment(ks, label, &value);
    } else if (raise != NULL) {
        rv = ts_keystore_counter_raise(ks, label, value);
    } else {
        rv = ts_keystore_counter_get(ks, label, &value);
    }
    if (rv == TS_OK) {
        printf("%llu\n", (unsigned long long)value);
    }
    status = rv == TS_OK ? CLI_EXIT_OK : cli_fail();
    ts_keystore_free(ks);
    return status;
}

/* --- the table ------------------------------------------------------------------------------- */

#define OPT_KEYSTORE                                                                               \
    {                                                                                              \
        .name = "keystore", .value = "URI", .help = "the key store (else $TESSERA_KEYSTORE)"       \
    }
#define OPT_LABEL(what)                                                                            \
    {                                                                                              \
        .name = "label", .value = "NAME", .flags = CLI_OPT_REQUIRED, .help = what                  \
    }

const char cli_keystore_env_help[] =
    "Key-store URIs:\n"
    "  soft:DIR?pin-value=PIN                      a software store in directory DIR\n"
    "  pkcs11:token=NAME?module-path=PATH&pin-value=PIN\n"
    "                                              a PKCS#11 token (RFC 7512)\n"
    "  pin-source=FILE reads the PIN from a file instead of pin-value.\n"
    "\n"
    "Environment:\n"
    "  TESSERA_KEYSTORE   the key store when --keystore is not given\n"
    "  TESSERA_PIN        the user PIN when the URI carries none\n"
    "  TESSERA_SO_PIN     the security officer PIN for 'init' of a pkcs11: store\n";

static const cli_opt init_opts[] = {
    OPT_KEYSTORE,
    {.name = "so-pin",
     .value = "PIN",
     .help = "pkcs11: security officer PIN (else $TESSERA_SO_PIN)"},
    {0},
};

static const cli_opt genkey_opts[] = {
    OPT_KEYSTORE,
    OPT_LABEL("label of the new key"),
    {.name = "curve", .value = "P-256|P-384", .help = "the curve (default P-256)"},
    {.name = "out", .value = "FILE", .help = "write the public key there instead of stdout"},
    {0},
};

static const cli_opt list_opts[] = {
    OPT_KEYSTORE,
    {0},
};

static const cli_opt pubkey_opts[] = {
    OPT_KEYSTORE,
    OPT_LABEL("the key"),
    {.name = "out", .value = "FILE", .help = "write the PEM there instead of stdout"},
    {0},
};

static const cli_opt csr_opts[] = {
    OPT_KEYSTORE,
    OPT_LABEL("the key that signs the request"),
    {.name = "subject",
     .value = "/CN=..[/O=..]",
     .flags = CLI_OPT_REQUIRED,
     .help = "the subject; '\\/' is a slash inside a value"},
    {.name = "san",
     .value = "TYPE:VALUE[,..]",
     .flags = CLI_OPT_REPEAT,
     .help = "subjectAltName: DNS:, URI:, IP: or email:"},
    {.name = "out", .value = "FILE", .help = "write the PEM there instead of stdout"},
    {0},
};

static const cli_opt delete_opts[] = {
    OPT_KEYSTORE,
    OPT_LABEL("the key or data object to delete"),
    {0},
};

static const cli_opt counter_opts[] = {
    OPT_KEYSTORE,
    OPT_LABEL("the counter"),
    {.name = "increment", .help = "add one"},
    {.name = "raise", .value = "N", .help = "raise to N; refused when N is below the value"},
    {0},
};

static const cli_opt put_opts[] = {
    OPT_KEYSTORE,
    OPT_LABEL("label of the data object"),
    {.name = "in", .value = "FILE", .flags = CLI_OPT_REQUIRED, .help = "the data ('-' for stdin)"},
    {.name = "secret", .help = "readable only after login; encrypted at rest in soft:"},
    {.name = "replace", .help = "replace a data object of that label"},
    {0},
};

static const cli_opt get_opts[] = {
    OPT_KEYSTORE,
    OPT_LABEL("the data object"),
    {.name = "out", .value = "FILE", .help = "write it there (mode 0600) instead of stdout"},
    {0},
};

const cli_command cli_keystore_commands[] = {
    {.name = "init",
     .summary = "Create a new, empty store and print its UID",
     .opts = init_opts,
     .run = cmd_init,
     .help = cli_keystore_env_help},
    {.name = "genkey",
     .summary = "Generate an EC key inside the store and print its public key",
     .opts = genkey_opts,
     .run = cmd_genkey,
     .help = cli_keystore_env_help},
    {.name = "list",
     .summary = "List the keys, data objects and counters",
     .opts = list_opts,
     .run = cmd_list,
     .help = cli_keystore_env_help},
    {.name = "pubkey",
     .summary = "Print the public key of a key as PEM",
     .opts = pubkey_opts,
     .run = cmd_pubkey,
     .help = cli_keystore_env_help},
    {.name = "csr",
     .summary = "Make a PKCS#10 request signed inside the store",
     .opts = csr_opts,
     .run = cli_keystore_cmd_csr,
     .help = cli_keystore_env_help},
    {.name = "delete",
     .summary = "Delete a key or a data object",
     .opts = delete_opts,
     .run = cmd_delete,
     .help = cli_keystore_env_help},
    {.name = "counter",
     .summary = "Read, increment or raise a monotonic counter",
     .opts = counter_opts,
     .run = cmd_counter,
     .help = cli_keystore_env_help},
    {.name = "put",
     .summary = "Store a data object (certificate, configuration, secret)",
     .opts = put_opts,
     .run = cli_keystore_cmd_put,
     .help = cli_keystore_env_help},
    {.name = "get",
     .summary = "Read a data object",
     .opts = get_opts,
     .run = cli_keystore_cmd_get,
     .help = cli_keystore_env_help},
    {0},
};
