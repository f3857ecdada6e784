/*
 * The cases of the key-store conformance suite (tests/unit/test_keystore.c runs each against a
 * fresh store of every backend it applies to). Each takes the fixture, whose store is open.
 */
#ifndef TS_KS_CASES_H
#define TS_KS_CASES_H

#include "ks_fixture.h"

/* ks_cases_objects.c: data objects and listings */
void ks_case_object_roundtrip(ks_fixture *fx);
void ks_case_object_too_big(ks_fixture *fx);
void ks_case_object_exists(ks_fixture *fx);
void ks_case_object_replace(ks_fixture *fx);
void ks_case_object_secret_flag(ks_fixture *fx);
void ks_case_object_delete(ks_fixture *fx);
void ks_case_object_wrong_type(ks_fixture *fx);
void ks_case_object_persists(ks_fixture *fx);
void ks_case_list_sorted(ks_fixture *fx);

/* ks_cases_counter.c: monotonic counters */
void ks_case_counter_absent(ks_fixture *fx);
void ks_case_counter_increment(ks_fixture *fx);
void ks_case_counter_rollback(ks_fixture *fx);
void ks_case_counter_no_delete(ks_fixture *fx);
void ks_case_counter_persists(ks_fixture *fx);
void ks_case_counter_two_processes(ks_fixture *fx);

/* ks_cases_errors.c: bad input, PINs, modules, tokens, a full store */
void ks_case_bad_uri(ks_fixture *fx);
void ks_case_wrong_pin(ks_fixture *fx);
void ks_case_create_existing(ks_fixture *fx);
void ks_case_missing_module(ks_fixture *fx);
void ks_case_unknown_token(ks_fixture *fx);
void ks_case_null_args(ks_fixture *fx);
void ks_case_full_store(ks_fixture *fx);

/* ks_cases_import.c: an imported key, never at rest in the clear */
void ks_case_soft_import_no_plaintext(ks_fixture *fx);
void ks_case_soft_secret_encrypted(ks_fixture *fx);
void ks_case_pkcs11_import_usable(ks_fixture *fx);

#endif
