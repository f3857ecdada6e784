/*
 * GET /agent/v1/firmware/{id}: a device downloads a release that targets it, over mutual TLS with
 * its identity certificate (like /agent/v1/session). Any other release, or one of another tenant,
 * answers 404. "Range: bytes=N-" (or bytes=N-M) resumes: 206 with Content-Range, 416 when N is
 * past the end. The file is handed to libevent as a file segment, never read whole into memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "common/error_internal.h"
#include "service/svc_firmware_internal.h"
#include "service/svc_session_internal.h"

/* One range "bytes=N-" or "bytes=N-M": 1 with *first and *last (inclusive, UINT64_MAX: to the
 * end); 0 when the header asks for something else (several ranges, a suffix), which is answered
 * with the whole file (RFC 9110 section 14.2 lets a server ignore a Range). */
static int range_parse(const char *h, uint64_t *first, uint64_t *last)
{
    char *end = NULL;
    if (h == NULL || strncmp(h, "bytes=", 6) != 0 || h[6] < '0' || h[6] > '9') {
        return 0;
    }
    errno = 0;
    unsigned long long a = strtoull(h + 6, &end, 10);
    if (errno != 0 || *end != '-') {
        return 0;
    }
    const char *b = end + 1;
    *first = a;
    *last = UINT64_MAX;
    if (*b == '\0') {
        return 1;
    }
    if (*b < '0' || *b > '9') {
        return 0;
    }
    unsigned long long z = strtoull(b, &end, 10);
    if (errno != 0 || *end != '\0' || z < a) {
        return 0;
    }
    *last = z;
    return 1;
}

void svc_firmware_download(svc_request *r)
{
    char uid[TS_DEVICE_UID_MAX + 1];
    char path[4096];
    ts_fw_release_row rel;
    struct stat st;
    uint64_t first = 0, last = UINT64_MAX;

    if (!svc_session_client_uid(r, uid)) {
        return;
    }
    ts_err rv = ts_ca_fw_for_device(r->ca, r->client_tenant.name, uid, svc_param(r, "id"), &rel,
                                    path, sizeof path);
    if (rv != TS_OK) {
        svc_reply_err(r, rv);
        return;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != rel.size) {
        if (fd >= 0) {
            close(fd);
        }
        svc_reply_err(r, ts_error_set(TS_ERR_CORRUPT,
                                      "the file of release %s is missing or not "
                                      "its recorded size",
                                      rel.id));
        return;
    }
    uint64_t size = (uint64_t)st.st_size;
    int partial = range_parse(svc_header(r, "Range"), &first, &last);
    char value[96];
    if (partial && first >= size) {
        close(fd);
        snprintf(value, sizeof value, "bytes */%" PRIu64, size);
        svc_reply_header(r, "Content-Range", value);
        svc_reply_error(r, 416, "range_not_satisfiable",
                        "the range starts at %" PRIu64 ", past the end of the %" PRIu64
                        "-byte file",
                        first, size);
        return;
    }
    if (!partial) {
        first = 0;
    }
    if (last >= size) {
        last = size - 1;
    }
    uint64_t len = last - first + 1;
    if (evbuffer_add_file(evhttp_request_get_output_buffer(r->req), fd, (ev_off_t)first,
                          (ev_off_t)len) != 0) {
        close(fd);
        svc_reply_err(r, ts_error_set(TS_ERR_IO, "cannot send the file of release %s", rel.id));
        return;
    }
    /* fd belongs to the buffer now. */
    svc_reply_header(r, "Accept-Ranges", "bytes");
    svc_reply_header(r, "Cache-Control", "no-store");
    snprintf(value, sizeof value, "\"%s\"", rel.sha256);
    svc_reply_header(r, "ETag", value);
    if (partial) {
        snprintf(value, sizeof value, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last, size);
        svc_reply_header(r, "Content-Range", value);
    }
    svc_reply(r, partial ? 206 : 200, "application/octet-stream", NULL, 0);
}
