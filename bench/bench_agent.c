/*
 * bench_agent: how small the device side is. Three figures beside the device targets:
 *   agent_stripped  bytes of build/bin/tessera-agent after `strip` of a copy (everything the
 *                   executable holds: our code and the static libraries it links)
 *   device_code     text + data (`size`) of the device libraries' objects: ts_agent,
 *                   ts_keystore, ts_common and ts_pki's command module (ts_proto, the
 *                   generated protobuf code, printed apart), for reference
 *   device_linked   what of it the linker put into tessera-agent (its link map): our own
 *                   code the device carries; target <= 250 KB
 *   peak_rss_soft   the largest peak resident set (wait4 ru_maxrss) of tessera-agent over
 *                   init, claim inject and enroll against a `tessera serve` started here, on a
 *                   soft: key store; peak_rss_pkcs11 the same on a SoftHSM2 token (skipped when
 *                   TS_SOFTHSM_MODULE is not there); target <= 8 MB
 *   peak_rss_floor  the same of rss_floor, which only loads and initialises libcurl and
 *                   OpenSSL's TLS and exits: the least any libcurl EST client takes here; the
 *                   agent's figures are printed as ratios to it
 * Printed, not enforced. docs/bench.md describes the output. Environment: TS_KEEP_TMP.
 */
#define _GNU_SOURCE
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>

/* The header serves several benchmarks; this one uses only part of it. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "bench_serve.h"

#define CODE_TARGET_KB 250.0
#define RSS_TARGET_KB  (8.0 * 1024.0)
#define LINKED_GROUPS  6 /* the command line, then five libraries */

/*
 * Sum of text and data of a static library's objects, from `size -t`: the (TOTALS) line, or,
 * with a member prefix, only the objects whose names start with it (the device links just those
 * of that library).
 */
static int lib_code_of(const char *lib, const char *member, unsigned long *bytes)
{
    char cmd[BS_PATH + 64], line[512], name[256];
    unsigned long text, data, bss, dec;
    FILE *p;
    int found = 0;

    snprintf(cmd, sizeof cmd, "size -t '%s' 2>/dev/null", lib);
    p = popen(cmd, "r");
    if (p == NULL) {
        return -1;
    }
    *bytes = 0;
    while (fgets(line, sizeof line, p) != NULL) {
        int n = sscanf(line, "%lu %lu %lu %lu %*s %255s", &text, &data, &bss, &dec, name);
        if (n != 5) {
            continue;
        }
        if (member == NULL && strcmp(name, "(TOTALS)") == 0) {
            *bytes = text + data;
            found = 1;
        } else if (member != NULL && strncmp(name, member, strlen(member)) == 0) {
            *bytes += text + data;
            found = 1;
        }
    }
    return pclose(p) == 0 && found ? 0 : -1;
}

/*
 * Our code and data that the linker put into tessera-agent, from its link map
 * (lib/tessera-agent.map, written by the build): the .text, .rodata and .data input sections of
 * the tessera-agent objects (group 0) and of libts_agent, libts_keystore, libts_common, libts_pki
 * and libts_fota (groups 1 to 5). Whole-library sizes overstate it: the device links only what
 * it calls (none of the key store's backup or sealing code, a few modules of ts_pki), function by
 * function (--gc-sections).
 */
static int linked_code(const char *map, unsigned long bytes[LINKED_GROUPS])
{
    static const char *const groups[LINKED_GROUPS] = {
        "CMakeFiles/tessera-agent.dir/", "lib/libts_agent.a(", "lib/libts_keystore.a(",
        "lib/libts_common.a(",           "lib/libts_pki.a(",   "lib/libts_fota.a("};
    char line[1024], section[256] = "";
    int in_map = 0;
    FILE *f = fopen(map, "r");

    if (f == NULL) {
        return -1;
    }
    memset(bytes, 0, LINKED_GROUPS * sizeof bytes[0]);
    while (fgets(line, sizeof line, f) != NULL) {
        char name[256] = "", file[512] = "";
        unsigned long addr, size;
        if (!in_map) {
            in_map = strncmp(line, "Linker script and memory map", 28) == 0;
            continue;
        }
        /* " .text  0xADDR  0xSIZE file", or the name alone and the rest on the next line. */
        if (line[0] == ' ' && line[1] == '.') {
            if (sscanf(line, " %255s 0x%lx 0x%lx %511s", name, &addr, &size, file) == 4) {
                snprintf(section, sizeof section, "%s", name);
            } else if (sscanf(line, " %255s", name) == 1) {
                snprintf(section, sizeof section, "%s", name);
                continue;
            }
        } else if (sscanf(line, " 0x%lx 0x%lx %511s", &addr, &size, file) != 3) {
            continue;
        }
        if (file[0] == '\0' ||
            (strncmp(section, ".text", 5) != 0 && strncmp(section, ".rodata", 7) != 0 &&
             strncmp(section, ".data", 5) != 0)) {
            continue;
        }
        for (size_t g = 0; g < LINKED_GROUPS; g++) {
            if (strncmp(file, groups[g], strlen(groups[g])) == 0) {
                bytes[g] += size;
            }
        }
    }
    fclose(f);
    return bytes[1] > 0 ? 0 : -1;
}

static int lib_code(const char *lib, unsigned long *bytes)
{
    return lib_code_of(lib, NULL, bytes);
}

static int stripped_size(const bs_env *e, const char *agent, unsigned long *bytes)
{
    char copy[BS_PATH], cmd[3 * BS_PATH + 64];
    struct stat st;

    if (bs_path(copy, e->dir, "tessera-agent.stripped") != 0) {
        return -1;
    }
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && strip '%s'", agent, copy, copy);
    if (system(cmd) != 0 || stat(copy, &st) != 0) {
        return -1;
    }
    *bytes = (unsigned long)st.st_size;
    return 0;
}

/* init, claim inject and enroll of a fresh device on key store ks; peak: each one's ru_maxrss;
 * floor: rss_floor's. */
static void peak_print(const char *tag, const long peak[3], long floor_kb)
{
    long max = 0;
    for (size_t i = 0; i < 3; i++) {
        max = peak[i] > max ? peak[i] : max;
    }
    printf("peak_rss_%-6s %ld KB (init %ld, claim inject %ld, enroll %ld) %.2f x floor (target <= "
           "%.0f KB: %s)\n",
           tag, max, peak[0], peak[1], peak[2], floor_kb > 0 ? (double)max / (double)floor_kb : 0,
           RSS_TARGET_KB, (double)max <= RSS_TARGET_KB ? "met" : "MISSED");
}

/* rss_floor's peak resident set, and the number of shared objects it maps (from ldd). */
static int floor_rss(const bs_env *e, long *kb, int *libs)
{
    char prog[BS_PATH], log[BS_PATH], cmd[BS_PATH + 64], line[512];
    char *argv[] = {prog, NULL};
    FILE *p;

    if (bs_path(prog, e->bin, "rss_floor") != 0 || bs_path(log, e->dir, "floor.log") != 0 ||
        access(prog, X_OK) != 0 || bs_run_rss(argv, NULL, 0, log, kb) != 0) {
        fprintf(stderr, "bench: cannot run %s/rss_floor: build the rss_floor target\n", e->bin);
        return -1;
    }
    *libs = 0;
    snprintf(cmd, sizeof cmd, "ldd '%s' 2>/dev/null", prog);
    p = popen(cmd, "r");
    while (p != NULL && fgets(line, sizeof line, p) != NULL) {
        *libs += strstr(line, ".so") != NULL;
    }
    if (p != NULL) {
        pclose(p);
    }
    return 0;
}

/*
 * A SoftHSM2 configuration of the benchmark's own and a token for the device; 0 when made, 1
 * when SoftHSM2 is not installed (the figure is skipped), -1 on failure.
 */
static int softhsm_token(const bs_env *e, char *ks, size_t size)
{
    const char *module = getenv("TS_SOFTHSM_MODULE");
    char conf[BS_PATH], tokens[BS_PATH];
    char *init[] = {"keystore", "init", "--keystore", ks, "--so-pin", "bench-so-1234", NULL};
    FILE *f;

    if (module == NULL || access(module, R_OK) != 0) {
        return 1;
    }
    if (bs_path(conf, e->dir, "softhsm2.conf") != 0 || bs_path(tokens, e->dir, "tokens") != 0 ||
        mkdir(tokens, 0700) != 0) {
        return -1;
    }
    f = fopen(conf, "w");
    if (f == NULL ||
        fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens) < 0 ||
        fclose(f) != 0 || setenv("SOFTHSM2_CONF", conf, 1) != 0) {
        return -1;
    }
    snprintf(ks, size, "pkcs11:token=bench-device?module-path=%s&pin-value=bench-4321", module);
    return bs_tessera(e, init, NULL, 0) == 0 ? 0 : -1;
}

static int agent_flow(const bs_env *e, const bs_server *s, const char *agent, const char *tag,
                      char *ks, long peak[3])
{
    char state[BS_PATH], code[BS_PATH], log[BS_PATH], out[BS_OUT], name[64];
    char *claim[] = {"claim", "create", "--dir", (char *)e->inst, NULL};
    char *init[] = {(char *)agent, "init", "--keystore", ks, "--state", state, NULL};
    char *inject[] = {(char *)agent, "claim", "inject", code, "--keystore", ks,
                      "--state",     state,   NULL};
    char *enroll[] = {(char *)agent, "enroll",        "--keystore", ks,
                      "--state",     state,           "--server",   (char *)s->https,
                      "--trust",     (char *)e->root, NULL};
    char *last;
    FILE *f;

    snprintf(name, sizeof name, "agent-state-%s", tag);
    if (bs_path(state, e->dir, name) != 0 || bs_path(code, e->dir, "claim.code") != 0 ||
        bs_path(log, e->dir, "agent.log") != 0 || bs_tessera(e, claim, out, sizeof out) != 0) {
        return -1;
    }
    /* The claim code is the last line tessera claim create prints. */
    while (strlen(out) > 0 && out[strlen(out) - 1] == '\n') {
        out[strlen(out) - 1] = '\0';
    }
    last = strrchr(out, '\n');
    f = fopen(code, "w");
    if (f == NULL || fprintf(f, "%s\n", last != NULL ? last + 1 : out) < 0 || fclose(f) != 0) {
        return -1;
    }
    if (bs_run_rss(init, NULL, 0, log, &peak[0]) != 0 ||
        bs_run_rss(inject, NULL, 0, log, &peak[1]) != 0 ||
        bs_run_rss(enroll, NULL, 0, log, &peak[2]) != 0) {
        fprintf(stderr, "bench: tessera-agent failed; see %s\n", log);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const libs[] = {"ts_agent", "ts_keystore", "ts_common"};
    char agent[BS_PATH], lib[BS_PATH + 64], ks[BS_PATH + 128];
    char *ksinit[] = {"keystore", "init", "--keystore", ks, "--so-pin", "bench-so-1234", NULL};
    unsigned long stripped = 0, code[4] = {0, 0, 0, 0}, proto = 0, total = 0;
    long soft[3] = {0, 0, 0}, p11[3] = {0, 0, 0}, floor_kb = 0;
    int have_p11 = 0, floor_libs = 0;
    bs_env e;
    bs_server s;
    int rv = 1;

    (void)argc;
    if (bs_setup(&e, argv[0]) != 0) {
        return 1;
    }
    if (bs_path(agent, e.bin, "tessera-agent") != 0 || access(agent, X_OK) != 0) {
        fprintf(stderr, "bench: no %s: build the tessera-agent target first\n", agent);
        goto done;
    }
    if (stripped_size(&e, agent, &stripped) != 0) {
        fprintf(stderr, "bench: cannot strip a copy of %s\n", agent);
        goto done;
    }
    for (size_t i = 0; i < 3; i++) {
        snprintf(lib, sizeof lib, "%s/../lib/lib%s.a", e.bin, libs[i]);
        if (lib_code(lib, &code[i]) != 0) {
            fprintf(stderr, "bench: cannot measure %s with size\n", lib);
            goto done;
        }
        total += code[i];
    }
    /* Of ts_pki the device links only the command envelope (src/pki/command*.c). */
    snprintf(lib, sizeof lib, "%s/../lib/libts_pki.a", e.bin);
    if (lib_code_of(lib, "command", &code[3]) != 0) {
        fprintf(stderr, "bench: cannot measure the command objects of %s with size\n", lib);
        goto done;
    }
    total += code[3];
    snprintf(lib, sizeof lib, "%s/../lib/libts_proto.a", e.bin);
    if (lib_code(lib, &proto) != 0) {
        proto = 0;
    }
    if (floor_rss(&e, &floor_kb, &floor_libs) != 0 || bs_serve_start(&e, 0, 0, &s) != 0) {
        goto done;
    }
    snprintf(ks, sizeof ks, "soft:%s/device-ks?pin-value=bench-device-1234", e.dir);
    rv = bs_tessera(&e, ksinit, NULL, 0) == 0 ? agent_flow(&e, &s, agent, "soft", ks, soft) : -1;
    if (rv == 0) {
        int t = softhsm_token(&e, ks, sizeof ks);
        have_p11 = t == 0;
        rv = t < 0 ? -1 : have_p11 ? agent_flow(&e, &s, agent, "pkcs11", ks, p11) : 0;
    }
    if (bs_serve_stop(&s) != 0) {
        rv = 1;
    }
    if (rv != 0) {
        rv = 1;
        goto done;
    }
    printf("agent_stripped  %lu bytes (%.1f KB)\n", stripped, (double)stripped / 1024.0);
    printf("device_code     %.1f KB text+data of the whole libraries: ts_agent %.1f, ts_keystore "
           "%.1f, ts_common %.1f, ts_pki command %.1f; generated ts_proto %.1f KB apart\n",
           (double)total / 1024.0, (double)code[0] / 1024.0, (double)code[1] / 1024.0,
           (double)code[2] / 1024.0, (double)code[3] / 1024.0, (double)proto / 1024.0);
    unsigned long linked[LINKED_GROUPS];
    snprintf(lib, sizeof lib, "%s/../lib/tessera-agent.map", e.bin);
    if (linked_code(lib, linked) != 0) {
        printf("device_linked   no link map at %s: rebuild tessera-agent\n", lib);
    } else {
        unsigned long sum = 0;
        for (size_t g = 0; g < LINKED_GROUPS; g++) {
            sum += linked[g];
        }
        printf("device_linked   %.1f KB of our code and data in tessera-agent: command line %.1f, "
               "ts_agent %.1f, ts_keystore %.1f, ts_common %.1f, ts_pki %.1f, ts_fota %.1f "
               "(target <= %.0f KB: %s)\n",
               (double)sum / 1024.0, (double)linked[0] / 1024.0, (double)linked[1] / 1024.0,
               (double)linked[2] / 1024.0, (double)linked[3] / 1024.0, (double)linked[4] / 1024.0,
               (double)linked[5] / 1024.0, CODE_TARGET_KB,
               (double)sum / 1024.0 <= CODE_TARGET_KB ? "met" : "MISSED");
    }
    peak_print("soft", soft, floor_kb);
    if (have_p11) {
        peak_print("pkcs11", p11, floor_kb);
    }
    printf(
        "peak_rss_floor  %ld KB: rss_floor, which only loads libcurl and OpenSSL's TLS (%d shared "
        "objects) and initialises them (target <= %.0f KB: %s)\n",
        floor_kb, floor_libs, RSS_TARGET_KB,
        (double)floor_kb <= RSS_TARGET_KB ? "within" : "already past");
done:
    bs_teardown(&e);
    return rv;
}
