/* The CA instance: replaced as the service is built. */
typedef int ts_server_placeholder;
