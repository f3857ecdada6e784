/*
 * tessera demo: the device-to-cloud walk on loopback (docs/demo.md).
 *
 * The demo runs the real programs as separate processes (tessera init and serve, Mosquitto with
 * the Tessera plugin, one tessera-agent per device) in a fresh temporary directory, watches the
 * broker as the service with libmosquitto, and stops everything it started however it ends.
 *
 *   cli_demo.c          the command: options, the step table, signals, the work directory
 *   cli_demo_proc.c     child processes: start, wait, stop, their logs
 *   cli_demo_cloud.c    the steps on the cloud side: ceremony, service, broker
 *   cli_demo_devices.c  the steps on the device side: onboarding, telemetry, command, revocation
 *   cli_demo_mqtt.c     the observer: an MQTT subscriber with the service's identity
 *   cli_demo_summary.c  the closing table
 *   cli_demo_keystore.c the key-store walk (tessera demo --keystore)
 *
 * Single-threaded except for the observer, which keeps its own lock.
 */
#ifndef TS_CLI_DEMO_H
#define TS_CLI_DEMO_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#include "cli/cli_internal.h"
#include "tessera/error.h"

enum {
    DEMO_DEVICES_DEFAULT = 5,
    DEMO_DEVICES_MAX = 50,
    DEMO_PATH_MAX = 512,      /* every path the demo makes; the work directory is short */
    DEMO_URI_MAX = 640,       /* a soft: URI with its PIN */
    DEMO_UID_MAX = 64,        /* TS_COMMAND_UID_MAX */
    DEMO_SERIAL_MAX = 64,     /* a serial in hex */
    DEMO_LINE_MAX = 512,      /* one line of a child's log */
    DEMO_RUN_TIMEOUT_S = 60,  /* a command that should finish */
    DEMO_STOP_GRACE_MS = 5000 /* SIGTERM, then SIGKILL after this */
};

extern const cli_opt cli_demo_opts[];
extern const char cli_demo_help[];
int cli_demo_run(const cli_args *args);

/* The key-store walk of earlier versions (cli_demo_keystore.c). */
int cli_demo_keystore_run(const cli_args *args);

/* --- Child processes (cli_demo_proc.c) ---------------------------------------------------------
 */

/* Set by SIGINT, SIGTERM and SIGHUP: every wait gives up and the demo cleans up. */
extern volatile sig_atomic_t demo_interrupted;

typedef struct demo_proc {
    char name[48];           /* "tessera serve", "agent dev-2" */
    char log[DEMO_PATH_MAX]; /* its stdout and stderr */
    pid_t pid;               /* > 0 from start until reaped */
    int status;              /* the wait status once reaped */
    int reaped;
} demo_proc;

/*
 * Starts argv[0] (a path) with argv, stdin from /dev/null, stdout and stderr appended to log. The
 * child leads its own process group (so a Ctrl-C reaches the demo, which stops it in order) and
 * gets SIGTERM if the demo dies.
 */
ts_err demo_proc_start(demo_proc *p, const char *name, const char *log, const char *const argv[]);

/* 1 while running; 0 once exited (reaped here). */
int demo_proc_running(demo_proc *p);

/* "exited with status 2", "was killed by signal 9" into buf. */
void demo_proc_exit_text(const demo_proc *p, char *buf, size_t size);

/*
 * Stops the running ones among procs: SIGTERM to each one's process group, then SIGKILL to those
 * left after grace_ms. Returns how many had to be killed.
 */
unsigned demo_proc_stop(demo_proc *const *procs, size_t n, int grace_ms);

/*
 * Runs argv to its end (at most timeout_s seconds; interrupted by demo_interrupted), output to
 * log; *exit_code is its exit status. An error when it could not run, timed out or was killed.
 */
ts_err demo_run(const char *name, const char *log, int timeout_s, const char *const argv[],
                int *exit_code);

/* The first line of log at or after *offset that starts with prefix; *offset moves past it.
 * 1 found (the line without its newline in line), 0 not yet. */
int demo_log_find(const char *log, long *offset, const char *prefix, char *line, size_t size);

/*
 * Waits up to timeout_ms for a line starting with prefix in p's log, from *offset. An error
 * naming p when it exits first, when the time is up, or on an interrupt.
 */
ts_err demo_log_wait(demo_proc *p, long *offset, const char *prefix, int timeout_ms, char *line,
                     size_t size);

/* The last line of log that starts with prefix (after the prefix) into value; 1 found. */
int demo_log_value(const char *log, const char *prefix, char *value, size_t size);

/* The size of log now (where new lines will start). */
long demo_log_size(const char *log);

/* Prints the last lines of log, each indented, to out. */
void demo_log_tail(const char *log, unsigned lines, FILE *out);

/* Sleeps ms milliseconds unless interrupted; returns 0, or -1 when interrupted. */
int demo_sleep_ms(int ms);

/* Milliseconds on the monotonic clock. */
long long demo_now_ms(void);

/* Removes a directory tree; 0 when it is gone. */
int demo_remove_tree(const char *dir);

/* --- The observer (cli_demo_mqtt.c) ------------------------------------------------------------
 */

typedef struct demo_observer demo_observer;

typedef struct demo_seen {
    unsigned telemetry; /* messages on tessera/<tenant>/<uid>/telemetry */
    char first[160];    /* the first telemetry payload, printable */
    char status[64];    /* the last status payload, printable */
    unsigned statuses;  /* status messages */
    unsigned offline;   /* status messages saying offline */
} demo_seen;

/*
 * Connects to the broker at 127.0.0.1:port as the service: the certificate chain in cert_pem,
 * the key "tls-server" of the key store at keystore_uri (through the provider), the broker's
 * certificate checked against trust_pem for 127.0.0.1. Waits for the CONNACK, subscribes to
 * every device's telemetry and status. An error says what the broker or TLS refused.
 */
ts_err demo_observer_start(int port, const char *keystore_uri, const char *cert_pem,
                           const char *trust_pem, demo_observer **out);

/* Counts messages of the device uid from now on (at most DEMO_DEVICES_MAX devices). */
void demo_observer_watch(demo_observer *o, const char *uid);

/* What the observer has seen of uid so far (zeros for an unwatched one). */
void demo_observer_seen(demo_observer *o, const char *uid, demo_seen *out);

/* Messages on the watched topics from devices not watched. */
unsigned demo_observer_others(demo_observer *o);

void demo_observer_free(demo_observer *o);

/* --- The run (cli_demo.c and the step files) ---------------------------------------------------
 */

typedef struct demo_device {
    char name[16];               /* "dev-1" */
    char dir[DEMO_PATH_MAX];     /* its key store and state live here */
    char keystore[DEMO_URI_MAX]; /* soft: URI with its PIN: never printed */
    char state[DEMO_PATH_MAX];
    char uid[DEMO_UID_MAX + 1];
    char serial[DEMO_SERIAL_MAX + 1];
    demo_proc agent;
    demo_seen seen; /* what the observer saw, copied when it stops */
    int enrolled, connected, answered, revoked, kicked, refused;
} demo_device;

typedef struct demo {
    unsigned ndev;
    int keep;
    /* the programs */
    char tessera[DEMO_PATH_MAX];
    char agent[DEMO_PATH_MAX];
    char plugin[DEMO_PATH_MAX];
    char mosquitto[DEMO_PATH_MAX];
    /* the places */
    char work[DEMO_PATH_MAX];
    char logs[DEMO_PATH_MAX];
    char instance[DEMO_PATH_MAX];
    char keystore[DEMO_URI_MAX]; /* the instance's key store, with its PIN */
    char root_pem[DEMO_PATH_MAX];
    char issuing_pem[DEMO_PATH_MAX];
    char client_pem[DEMO_PATH_MAX]; /* the service's MQTT identity */
    char broker_dir[DEMO_PATH_MAX];
    char url[64];
    int svc_port, mqtt_port;
    /* what runs */
    demo_proc serve;
    demo_proc mosquitto_proc;
    demo_observer *observer;
    demo_device dev[DEMO_DEVICES_MAX];
    /* results */
    char command_id[48];
    char command_output[128];
    unsigned revoked; /* index of the revoked device */
    /* a failing step names the log of the process that failed here */
    char fail_log[DEMO_PATH_MAX];
} demo;

/* A path under the work directory into out (DEMO_PATH_MAX); an error when it would not fit. */
ts_err demo_path(const demo *d, char *out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Runs `tessera ARGS...` (the same binary) to its end with output in logs/NAME.log; an exit
 * status other than 0 is an error naming the command, and fail_log is set. */
ts_err demo_tessera(demo *d, const char *name, const char *const args[]);

/* The steps, in order; each prints its own lines and returns an error with the reason. */
ts_err demo_step_ceremony(demo *d);
ts_err demo_step_service(demo *d);
ts_err demo_step_broker_cert(demo *d);
ts_err demo_step_token(demo *d);
ts_err demo_step_mosquitto(demo *d);
ts_err demo_step_observer(demo *d);
ts_err demo_step_onboard(demo *d);
ts_err demo_step_telemetry(demo *d);
ts_err demo_step_command(demo *d);
ts_err demo_step_revoke(demo *d);

/* The closing table: device, UID, certificate serial, messages, state. */
void demo_summary(const demo *d, FILE *out);

/* Indentation of the lines under a step. */
#define DEMO_IND "       "

#endif
