/*
 * Signed remote commands on the device: verification, the replay counter, the registered
 * handlers and the signed result (agent_command_internal.h).
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "agent/agent_command_internal.h"
#include "common/error_internal.h"

typedef ts_err (*handler_fn)(const agent_cmd_ctx *c, json_t *args, char *out, size_t size);

/* Copies text into buf as printable ASCII (anything else becomes '?'), truncated to fit. */
static void printable(char *buf, size_t size, const char *text)
{
    size_t j = 0;
    for (const char *p = text; *p != '\0' && j + 1 < size; p++) {
        unsigned char ch = (unsigned char)*p;
        buf[j++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    buf[j] = '\0';
}

static ts_err handle_ping(const agent_cmd_ctx *c, json_t *args, char *out, size_t size)
{
    (void)c;
    (void)args;
    snprintf(out, size, "pong");
    return TS_OK;
}

static ts_err handle_echo(const agent_cmd_ctx *c, json_t *args, char *out, size_t size)
{
    size_t i, used = 0;
    json_t *v;

    (void)c;
    out[0] = '\0';
    json_array_foreach(args, i, v)
    {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (s == NULL || memchr(s, '\0', n) != NULL) {
            return ts_error_set(TS_ERR_INVALID, "argument %zu is not text", i + 1);
        }
        if (used + n + (i > 0) >= size) {
            return ts_error_set(TS_ERR_LIMIT, "the output is over %zu bytes", size - 1);
        }
        if (i > 0) {
            out[used++] = ' ';
        }
        memcpy(out + used, s, n);
        used += n;
        out[used] = '\0';
    }
    return TS_OK;
}

static void utc_text(time_t t, char *buf, size_t size)
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(buf, size, "%lld", (long long)t);
    }
}

static ts_err handle_status(const agent_cmd_ctx *c, json_t *args, char *out, size_t size)
{
    ts_agent_status st;
    char nb[32], na[32];
    ts_err rv;

    (void)args;
    rv = ts_agent_status_get(c->agent, c->trust_file, &st);
    if (rv != TS_OK) {
        return rv;
    }
    utc_text(st.not_before, nb, sizeof nb);
    utc_text(st.not_after, na, sizeof na);
    snprintf(out, size,
             "uid: %s\nenrolled: %s\ngeneration: %llu\nsubject: %s\nissuer: %s\nserial: %s\n"
             "not before: %s\nnot after: %s\ntrust: %s",
             st.uid, st.enrolled ? "yes" : "no", (unsigned long long)st.generation, st.subject,
             st.issuer, st.serial, nb, na,
             c->trust_file == NULL ? "not checked"
             : st.chain_verified   ? "verified"
                                   : "not verified");
    return TS_OK;
}

static ts_err handle_reenroll(const agent_cmd_ctx *c, json_t *args, char *out, size_t size)
{
    const char *arg = json_string_value(json_array_get(args, 0));
    int rekey = arg != NULL && strcmp(arg, "rekey") == 0;

    /* No argument: a renewal of the same key; "rekey": a new key. */
    if (json_array_size(args) != (size_t)rekey) {
        return ts_error_set(TS_ERR_INVALID, "reenroll takes no argument or \"rekey\"");
    }
    if (c->reenroll == NULL) {
        return ts_error_set(TS_ERR_UNSUPPORTED, "re-enrollment is not available here");
    }
    return c->reenroll(c->reenroll_arg, rekey, out, size);
}

/* args: URL and SHA256 of the update file (docs/firmware-device.md). */
static ts_err handle_fw_update(const agent_cmd_ctx *c, json_t *args, char *out, size_t size)
{
    agent_fw_offer offer;
    if (c->fw_update == NULL) {
        return ts_error_set(TS_ERR_UNSUPPORTED, "firmware updates are not available here");
    }
    ts_err rv = agent_fw_offer_from_args(args, &offer);
    if (rv == TS_OK) {
        rv = c->fw_update(c->fw_update_arg, &offer, out, size);
    }
    return rv;
}

static const struct {
    const char *name;
    handler_fn fn;
} handlers[] = {
    {"ping", handle_ping},         {"echo", handle_echo},           {"status", handle_status},
    {"reenroll", handle_reenroll}, {"fw-update", handle_fw_update},
};

/* The stable word a refusal by ts_command_verify() starts with. */
static const char *refusal_word(ts_err rv)
{
    switch (rv) {
    case TS_ERR_AUTH:
        return "forged";
    case TS_ERR_FOREIGN:
        return "foreign";
    case TS_ERR_EXPIRED:
        return "expired";
    default:
        return "malformed";
    }
}

static ts_command_status finish(ts_command_result *res, ts_command_status status, const char *word,
                                const char *detail)
{
    char text[TS_COMMAND_ERROR_MAX + 1];

    res->status = status;
    if (word != NULL) {
        snprintf(text, sizeof text, "%s%s%s", word, detail != NULL ? ": " : "",
                 detail != NULL ? detail : "");
        printable(res->error, sizeof res->error, text);
    }
    return status;
}

ts_command_status agent_command_process(const agent_cmd_ctx *c, const unsigned char *der,
                                        size_t len, time_t now, ts_command *cmd,
                                        ts_command_result *res)
{
    ts_keystore *ks = ts_agent_keystore(c->agent);
    uint64_t highest = 0;
    json_t *args = NULL;
    handler_fn fn = NULL;
    ts_err rv;

    memset(cmd, 0, sizeof *cmd);
    memset(res, 0, sizeof *res);
    snprintf(res->uid, sizeof res->uid, "%s", c->uid);
    snprintf(res->tenant, sizeof res->tenant, "%s", c->tenant);
    res->time = (int64_t)now;

    rv = ts_command_verify(der, len, c->roots, c->cert, c->uid, now, cmd);
    /* Fields from an unverified envelope only name the refusal. */
    snprintf(res->id, sizeof res->id, "%s", cmd->id);
    res->seq = cmd->seq;
    if (rv != TS_OK) {
        const char *word = refusal_word(rv);
        char detail[TS_COMMAND_ERROR_MAX + 1];
        printable(detail, sizeof detail, ts_error_message());
        ts_error_clear();
        return finish(res, TS_COMMAND_REFUSED, word, detail);
    }

    /* The sequence number: above the highest ever run, recorded before the handler runs so a
     * crash in the handler cannot let the same envelope run twice. */
    rv = ts_keystore_counter_get(ks, AGENT_COMMAND_COUNTER, &highest);
    if (rv == TS_OK && cmd->seq <= highest) {
        char detail[96];
        snprintf(detail, sizeof detail, "sequence number %llu is not above %llu",
                 (unsigned long long)cmd->seq, (unsigned long long)highest);
        return finish(res, TS_COMMAND_REFUSED, "replayed", detail);
    }
    if (rv == TS_OK) {
        rv = ts_keystore_counter_raise(ks, AGENT_COMMAND_COUNTER, cmd->seq);
        if (rv == TS_ERR_ROLLBACK) {
            ts_error_clear();
            return finish(res, TS_COMMAND_REFUSED, "replayed",
                          "another command with this sequence number ran");
        }
    }
    if (rv != TS_OK) {
        char detail[TS_COMMAND_ERROR_MAX + 1];
        printable(detail, sizeof detail, ts_error_message());
        ts_error_clear();
        return finish(res, TS_COMMAND_FAILED, "cannot record the sequence number", detail);
    }

    for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++) {
        if (strcmp(handlers[i].name, cmd->name) == 0) {
            fn = handlers[i].fn;
        }
    }
    if (fn == NULL) {
        return finish(res, TS_COMMAND_FAILED, "no handler", NULL);
    }
    args = json_loads(cmd->args, JSON_REJECT_DUPLICATES, NULL);
    if (args == NULL || !json_is_array(args)) {
        json_decref(args);
        return finish(res, TS_COMMAND_FAILED, "malformed", "the arguments are not an array");
    }
    rv = fn(c, args, res->output, sizeof res->output);
    json_decref(args);
    if (rv != TS_OK) {
        char detail[TS_COMMAND_ERROR_MAX + 1];
        res->output[0] = '\0';
        printable(detail, sizeof detail, ts_error_message());
        ts_error_clear();
        return finish(res, TS_COMMAND_FAILED, detail, NULL);
    }
    return finish(res, TS_COMMAND_DONE, NULL, NULL);
}

ts_err agent_command_result_der(const agent_cmd_ctx *c, ts_command_result *res, unsigned char **der,
                                size_t *len)
{
    ts_err rv = ts_command_result_sign(res, c->key, c->cert, c->chain, der, len);

    if (rv == TS_ERR_INVALID && res->status == TS_COMMAND_REFUSED && res->id[0] != '\0') {
        /* A refused envelope may name its command with characters a result cannot carry:
         * answer without naming it. */
        ts_error_clear();
        res->id[0] = '\0';
        res->seq = 0;
        rv = ts_command_result_sign(res, c->key, c->cert, c->chain, der, len);
    }
    return rv;
}
