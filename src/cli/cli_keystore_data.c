/* tessera keystore put / get: data objects such as certificates and configuration. */
#include <string.h>

#include <openssl/crypto.h>

#include "cli/cli_internal.h"
#include "common/error_internal.h"

int cli_keystore_cmd_put(const cli_args *args)
{
    const char *label = cli_opt_value(args, "label");
    const char *in = cli_opt_value(args, "in");
    unsigned flags = cli_opt_given(args, "secret") ? TS_DATA_SECRET : 0;
    uint8_t *data = NULL;
    size_t len = 0;
    ts_keystore *ks = NULL;
    ts_err rv;
    int status = cli_keystore_check_label(args, label);

    if (status != CLI_EXIT_OK) {
        return status;
    }
    /* Read the whole input first: a missing or oversized file must not cost a store access. */
    if (cli_read_input(in, TS_OBJECT_MAX, &data, &len) != TS_OK) {
        return cli_fail();
    }
    status = cli_keystore_open(args, &ks);
    if (status != CLI_EXIT_OK) {
        goto done;
    }
    if (cli_opt_given(args, "replace")) {
        rv = ts_keystore_object_replace(ks, label, data, len, flags);
    } else {
        rv = ts_keystore_object_put(ks, label, data, len, flags);
    }
    status = rv == TS_OK ? CLI_EXIT_OK : cli_fail();
done:
    ts_keystore_free(ks);
    OPENSSL_clear_free(data, len);
    return status;
}

int cli_keystore_cmd_get(const cli_args *args)
{
    const char *label = cli_opt_value(args, "label");
    uint8_t *data = NULL;
    size_t len = 0;
    ts_keystore *ks = NULL;
    int status = cli_keystore_check_label(args, label);

    if (status != CLI_EXIT_OK) {
        return status;
    }
    status = cli_keystore_open(args, &ks);
    if (status != CLI_EXIT_OK) {
        return status;
    }
    status = CLI_EXIT_FAIL;
    if (ts_keystore_object_get(ks, label, &data, &len) != TS_OK) {
        status = cli_fail();
        goto done;
    }
    /* The object may be secret, and the command cannot tell: files get 0600. */
    if (cli_write_output(cli_opt_value(args, "out"), data, len, 0600) != TS_OK) {
        status = cli_fail();
        goto done;
    }
    status = CLI_EXIT_OK;
done:
    OPENSSL_clear_free(data, len);
    ts_keystore_free(ks);
    return status;
}
