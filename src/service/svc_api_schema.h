/*
 * Schema text of the REST API's request and response bodies, for svc_api_routes[] and through
 * it the OpenAPI 3.0 document (Schema Objects: "nullable" marks what may be null). Request schemas
 * say what svc_api_body.c enforces (the unit test compares the two); response schemas say what
 * svc_api_json.c writes (the matrix test checks replies against them).
 */
#ifndef TS_SVC_API_SCHEMA_H
#define TS_SVC_API_SCHEMA_H

/* --- Building blocks -------------------------------------------------------------------------- */

#define SA_STR       "{\"type\": \"string\"}"
#define SA_STR_NULL  "{\"type\": \"string\", \"nullable\": true}"
#define SA_INT       "{\"type\": \"integer\"}"
#define SA_BOOL      "{\"type\": \"boolean\"}"
#define SA_TIME      "{\"type\": \"string\", \"format\": \"date-time\"}"
#define SA_TIME_NULL "{\"type\": \"string\", \"format\": \"date-time\", \"nullable\": true}"
#define SA_HEX       "{\"type\": \"string\", \"pattern\": \"^[0-9A-Fa-f]+$\"}"
#define SA_STRS      "{\"type\": \"array\", \"items\": {\"type\": \"string\"}}"
#define SA_PEM                                                                                     \
    "{\"type\": \"string\", \"description\": \"PEM text\", \"pattern\": \"^-----BEGIN \"}"

/* An object with exactly these members; required is a list of quoted names. */
#define SA_OBJ(required, props)                                                                    \
    "{\"type\": \"object\", \"additionalProperties\": false, \"required\": [" required "], "       \
    "\"properties\": {" props "}}"

/* An object whose members are all optional. */
#define SA_OBJ_OPT(props)                                                                          \
    "{\"type\": \"object\", \"additionalProperties\": false, \"properties\": {" props "}}"

/* The shape of every list. */
#define SA_LIST(item)                                                                              \
    SA_OBJ("\"items\", \"next\"", "\"items\": {\"type\": \"array\", \"items\": " item "}, "        \
                                  "\"next\": " SA_STR_NULL)

/* --- Responses -------------------------------------------------------------------------------- */

#define SA_PRINCIPAL                                                                               \
    SA_OBJ("\"user\", \"role\", \"tenant\", \"device_uid\", \"token_id\"",                         \
           "\"user\": " SA_STR ", "                                                                \
           "\"role\": {\"enum\": [\"admin\", \"operator\", \"auditor\", \"device\"]}, "            \
           "\"tenant\": " SA_STR_NULL ", \"device_uid\": " SA_STR_NULL ", "                        \
           "\"token_id\": " SA_INT)

#define SA_TENANT                                                                                  \
    SA_OBJ("\"name\", \"org\", \"country\", \"created\"",                                          \
           "\"name\": " SA_STR ", \"org\": " SA_STR ", \"country\": " SA_STR_NULL ", "             \
           "\"created\": " SA_TIME)

#define SA_USER                                                                                    \
    SA_OBJ("\"id\", \"name\", \"tenant\", \"role\", \"device_uid\", \"disabled\", \"created\"",    \
           "\"id\": " SA_INT ", \"name\": " SA_STR ", \"tenant\": " SA_STR_NULL ", "               \
           "\"role\": {\"enum\": [\"admin\", \"operator\", \"auditor\", \"device\"]}, "            \
           "\"device_uid\": " SA_STR_NULL ", \"disabled\": " SA_BOOL ", \"created\": " SA_TIME)

#define SA_TOKEN_REQUIRED                                                                          \
    "\"id\", \"user\", \"name\", \"prefix\", \"created\", \"expires\", \"revoked_at\""
#define SA_TOKEN_PROPS                                                                             \
    "\"id\": " SA_INT ", \"user\": " SA_STR ", \"name\": " SA_STR ", \"prefix\": " SA_STR ", "     \
    "\"created\": " SA_TIME ", \"expires\": " SA_TIME ", \"revoked_at\": " SA_TIME_NULL
#define SA_TOKEN SA_OBJ(SA_TOKEN_REQUIRED, SA_TOKEN_PROPS)
#define SA_TOKEN_NEW                                                                               \
    SA_OBJ(SA_TOKEN_REQUIRED ", \"token\"", SA_TOKEN_PROPS                                         \
           ", \"token\": {\"type\": \"string\", \"pattern\": \"^tsk_[0-9a-f]{64}$\", "             \
           "\"description\": \"the bearer token, shown only here\"}")

#define SA_CA                                                                                      \
    SA_OBJ("\"kind\", \"subject\", \"serial\", \"fingerprint\", \"not_before\", \"not_after\", "   \
           "\"pem\"",                                                                              \
           "\"kind\": {\"enum\": [\"root\", \"issuing\"]}, \"subject\": " SA_STR ", "              \
           "\"serial\": " SA_HEX ", \"fingerprint\": " SA_HEX ", \"not_before\": " SA_TIME ", "    \
           "\"not_after\": " SA_TIME ", \"pem\": " SA_PEM)

#define SA_CERT                                                                                    \
    SA_OBJ("\"serial\", \"subject\", \"device_uid\", \"profile\", \"fingerprint\", \"status\", "   \
           "\"not_before\", \"not_after\", \"revoked_at\", \"revocation_reason\", \"created\"",    \
           "\"serial\": " SA_HEX ", \"subject\": " SA_STR ", \"device_uid\": " SA_STR_NULL ", "    \
           "\"profile\": " SA_STR ", \"fingerprint\": " SA_HEX ", "                                \
           "\"status\": {\"enum\": [\"valid\", \"revoked\"]}, \"not_before\": " SA_TIME ", "       \
           "\"not_after\": " SA_TIME ", \"revoked_at\": " SA_TIME_NULL ", "                        \
           "\"revocation_reason\": " SA_STR_NULL ", \"created\": " SA_TIME ", "                    \
           "\"pem\": " SA_PEM)

#define SA_DEVICE_REQUIRED "\"uid\", \"status\", \"created\", \"updated\""
#define SA_DEVICE_PROPS                                                                            \
    "\"uid\": " SA_STR ", \"status\": {\"enum\": [\"enabled\", \"disabled\"]}, "                   \
    "\"created\": " SA_TIME ", \"updated\": " SA_TIME
#define SA_DEVICE SA_OBJ(SA_DEVICE_REQUIRED, SA_DEVICE_PROPS)
#define SA_DEVICE_CERTS                                                                            \
    SA_OBJ(SA_DEVICE_REQUIRED ", \"certificates\"",                                                \
           SA_DEVICE_PROPS ", \"certificates\": {\"type\": \"array\", \"items\": " SA_CERT "}")

#define SA_CLAIM_REQUIRED                                                                          \
    "\"id\", \"profile\", \"prefix\", \"uses_max\", \"uses_left\", \"created\", \"expires\", "     \
    "\"revoked_at\""
#define SA_CLAIM_PROPS                                                                             \
    "\"id\": " SA_INT ", \"profile\": " SA_STR ", \"prefix\": " SA_STR ", "                        \
    "\"uses_max\": " SA_INT ", \"uses_left\": " SA_INT ", \"created\": " SA_TIME ", "              \
    "\"expires\": " SA_TIME ", \"revoked_at\": " SA_TIME_NULL
#define SA_CLAIM SA_OBJ(SA_CLAIM_REQUIRED, SA_CLAIM_PROPS)
#define SA_CLAIM_NEW                                                                               \
    SA_OBJ(SA_CLAIM_REQUIRED ", \"code\"",                                                         \
           SA_CLAIM_PROPS ", \"code\": {\"type\": \"string\", "                                    \
                          "\"description\": \"the claim code, shown only here\"}")

#define SA_AUDIT                                                                                   \
    SA_OBJ("\"id\", \"time\", \"actor\", \"action\", \"object\", \"details\", \"hash\"",           \
           "\"id\": " SA_INT ", \"time\": " SA_TIME ", \"actor\": " SA_STR ", "                    \
           "\"action\": " SA_STR ", \"object\": " SA_STR ", "                                      \
           "\"details\": {\"description\": \"the entry's details as recorded\"}, "                 \
           "\"hash\": " SA_HEX)

#define SA_AUDIT_VERIFY                                                                            \
    SA_OBJ("\"ok\", \"entries\"", "\"ok\": " SA_BOOL ", \"entries\": " SA_INT ", "                 \
                                  "\"first_bad\": " SA_INT ", \"message\": " SA_STR)

/* A certificate profile (docs/profiles.md), as PUT and as answered. */
#define SA_NAMES(list) "{\"type\": \"array\", \"items\": {\"enum\": [" list "]}}"
#define SA_P_KEY_TYPES                                                                             \
    SA_NAMES("\"P-256\", \"P-384\", \"P-521\", \"RSA-2048+\", \"RSA-3072+\", \"RSA-4096+\"")
#define SA_P_KU                                                                                    \
    SA_NAMES("\"digitalSignature\", \"nonRepudiation\", \"keyEncipherment\", "                     \
             "\"dataEncipherment\", \"keyAgreement\"")
#define SA_P_EKU                                                                                   \
    SA_NAMES("\"serverAuth\", \"clientAuth\", \"codeSigning\", \"emailProtection\", "              \
             "\"timeStamping\", \"OCSPSigning\"")
#define SA_P_SUBJECT_ENTRY                                                                         \
    SA_OBJ("\"type\", \"value\"",                                                                  \
           "\"type\": " SA_STR ", \"value\": " SA_STR ", \"optional\": " SA_BOOL)
#define SA_P_SAN_TYPES SA_NAMES("\"dns\", \"ip\", \"uri\", \"email\"")
#define SA_P_SAN                                                                                   \
    SA_OBJ("\"policy\"", "\"policy\": {\"enum\": [\"forbidden\", \"optional\", \"required\"]}, "   \
                         "\"types\": " SA_P_SAN_TYPES ", \"dns_suffixes\": " SA_STRS ", "          \
                         "\"wildcards\": " SA_BOOL)
#define SA_P_VALIDITY                                                                              \
    SA_OBJ_OPT("\"days\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 36525}, "           \
               "\"not_after\": " SA_STR)
#define SA_P_KIND   "{\"enum\": [\"device\", \"server\", \"firmware-signer\", \"verification\"]}"
#define SA_P_DIGEST "{\"enum\": [\"SHA-256\", \"SHA-384\", \"SHA-512\"]}"
#define SA_P_NAME   "{\"type\": \"string\", \"minLength\": 1, \"maxLength\": 64}"
#define SA_P_DESC   "{\"type\": \"string\", \"maxLength\": 256}"
#define SA_P_REQUIRED                                                                              \
    "\"name\", \"kind\", \"key_types\", \"signature_digest\", \"key_usage\", \"subject\", "        \
    "\"validity\""
#define SA_PROFILE                                                                                 \
    SA_OBJ(SA_P_REQUIRED,                                                                          \
           "\"name\": " SA_P_NAME ", \"description\": " SA_P_DESC ", \"kind\": " SA_P_KIND ", "    \
           "\"key_types\": " SA_P_KEY_TYPES ", \"signature_digest\": " SA_P_DIGEST ", "            \
           "\"key_usage\": " SA_P_KU ", \"extended_key_usage\": " SA_P_EKU ", "                    \
           "\"subject\": {\"type\": \"array\", \"items\": " SA_P_SUBJECT_ENTRY "}, "               \
           "\"csr_subject\": " SA_STRS ", \"san\": " SA_P_SAN ", "                                 \
           "\"csr_extensions\": " SA_STRS ", \"validity\": " SA_P_VALIDITY)

/* --- Requests: the same members and bounds as the svc_api_body_* specs ------------------------ */

#define SA_UID_PATTERN "\"pattern\": \"^[A-Za-z0-9._:-]+$\""

#define SA_REQ_TENANT                                                                              \
    SA_OBJ("\"name\"", "\"name\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 32, "    \
                       "\"pattern\": \"^[a-z0-9][a-z0-9-]*$\"}, "                                  \
                       "\"org\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 64}, "    \
                       "\"country\": {\"type\": \"string\", \"minLength\": 2, \"maxLength\": 2}")

#define SA_REQ_USER                                                                                \
    SA_OBJ("\"name\", \"role\"",                                                                   \
           "\"name\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 64}, "               \
           "\"role\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 16, "                \
           "\"enum\": [\"admin\", \"operator\", \"auditor\", \"device\"]}, "                       \
           "\"device_uid\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": "              \
           "64, " SA_UID_PATTERN                                                                   \
           ", \"description\": \"the device a device user is (role device)\"}")

#define SA_REQ_TOKEN                                                                               \
    SA_OBJ("\"user\", \"name\"",                                                                   \
           "\"user\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 64}, "               \
           "\"name\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 64, "                \
           "\"description\": \"what the token is for\"}, "                                         \
           "\"lifetime_seconds\": {\"type\": \"integer\", \"minimum\": 1, "                        \
           "\"maximum\": 316224000, \"description\": \"default 90 days\"}")

#define SA_REQ_VERIFICATION                                                                        \
    SA_OBJ("\"code\"", "\"code\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 64, "    \
                       "\"description\": \"the registration code the cloud asks for\"}")

#define SA_REQ_CSR                                                                                 \
    "\"csr\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 65536, "                     \
    "\"description\": \"PEM certificate request\"}"

#define SA_REQ_ISSUE                                                                               \
    SA_OBJ("\"csr\", \"profile\"",                                                                 \
           SA_REQ_CSR ", \"profile\": {\"type\": \"string\", \"minLength\": 1, "                   \
                      "\"maxLength\": 64}")

#define SA_REQ_REVOKE                                                                              \
    SA_OBJ_OPT("\"reason\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 32, "          \
               "\"description\": \"an RFC 5280 CRLReason name such as keyCompromise or "           \
               "superseded; default unspecified\"}")

#define SA_REQ_REKEY SA_OBJ("\"csr\"", SA_REQ_CSR)

#define SA_REQ_DEVICE                                                                              \
    SA_OBJ("\"uid\"",                                                                              \
           "\"uid\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 64, " SA_UID_PATTERN  \
           "}")

#define SA_REQ_CLAIM                                                                               \
    SA_OBJ_OPT("\"uses\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 1000000, "          \
               "\"description\": \"default 1\"}, "                                                 \
               "\"lifetime_seconds\": {\"type\": \"integer\", \"minimum\": 1, "                    \
               "\"maximum\": 31622400, \"description\": \"default 7 days\"}, "                     \
               "\"profile\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 64, "         \
               "\"description\": \"default device\"}")

#endif
