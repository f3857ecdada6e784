/*
 * The new key of a rekey and the record that keeps it across a lost answer (agent_rekey.c).
 */
#ifndef TS_AGENT_AGENT_REKEY_H
#define TS_AGENT_AGENT_REKEY_H

#include "agent/agent_internal.h"

#define AGENT_REKEY_LABEL "identity.rekey" /* {"from": GENERATION, "key": LABEL} */

typedef enum agent_rekey_outcome {
    AGENT_REKEY_DONE,    /* the new identity is committed */
    AGENT_REKEY_REFUSED, /* the service said no, or nothing was sent */
    AGENT_REKEY_UNKNOWN, /* sent, and the answer is missing or could not be committed */
} agent_rekey_outcome;

/* 1 when a rekey from the current generation was sent and its outcome is unknown. */
int agent_rekey_pending(ts_keystore *ks, const agent_pointer *cur);

/*
 * The key to certify: the recorded one when a rekey from this generation is pending (*resumed
 * set), else a fresh P-256 key under AGENT_KEY_PREFIX (generation + 1), recorded before use.
 */
TS_MUST_CHECK ts_err agent_rekey_begin(ts_keystore *ks, const agent_pointer *cur,
                                       char label[TS_LABEL_MAX + 1], int *resumed);

/* Ends or keeps the record (and the key) by the outcome. */
void agent_rekey_end(ts_keystore *ks, const char *label, agent_rekey_outcome outcome);

#endif
