/*
 * Which topics a client may use. MQTT 3.1.1 section 4.7: '+' and '#' are wildcards in filters
 * only, and match whole levels. A device's prefix is made of literal levels, so a filter that
 * starts with the prefix's exact characters can only match topics under it; "tessera/t/+/x"
 * or "tessera/#" do not start with "tessera/t/u/" and are refused.
 */
#include <string.h>

#include "broker/broker_internal.h"

bool tsb_acl_device(const char *prefix, size_t prefix_len, const char *topic)
{
    return topic != NULL && strncmp(topic, prefix, prefix_len) == 0;
}

bool tsb_acl_service(const char *topic)
{
    static const char root[] = "tessera/";

    return topic != NULL && strncmp(topic, root, sizeof(root) - 1) == 0;
}
