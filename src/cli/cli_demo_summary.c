/*
 * The demo's closing table: one row per device with its identity (UID and certificate serial),
 * the telemetry messages the service received from it, and where it ended up.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli_demo.h"

static const char *state_of(const demo_device *dev)
{
    if (dev->revoked) {
        if (dev->kicked && dev->refused) {
            return "revoked: kicked, refused on reconnect";
        }
        return dev->kicked ? "revoked: kicked" : "revoked";
    }
    if (!dev->enrolled) {
        return "not enrolled";
    }
    if (!dev->connected) {
        return "enrolled, not connected";
    }
    return dev->answered ? "online, answered ping" : "online";
}

void demo_summary(const demo *d, FILE *out)
{
    unsigned messages = 0, enrolled = 0, answered = 0, refused = 0;

    fprintf(out, "Summary\n");
    fprintf(out, "  %-7s %-32s %-40s %8s  %s\n", "device", "uid", "certificate serial", "messages",
            "state");
    for (unsigned i = 0; i < d->ndev; i++) {
        const demo_device *dev = &d->dev[i];
        fprintf(out, "  %-7s %-32s %-40s %8u  %s\n", dev->name, dev->uid, dev->serial,
                dev->seen.telemetry, state_of(dev));
        messages += dev->seen.telemetry;
        enrolled += (unsigned)dev->enrolled;
        answered += (unsigned)dev->answered;
        refused += (unsigned)(dev->revoked && dev->refused);
    }
    fprintf(out,
            "  %u of %u device%s enrolled, %u telemetry message%s received, %u command%s "
            "answered, %u revoked device%s refused\n",
            enrolled, d->ndev, d->ndev == 1 ? "" : "s", messages, messages == 1 ? "" : "s",
            answered, answered == 1 ? "" : "s", refused, refused == 1 ? "" : "s");
}
