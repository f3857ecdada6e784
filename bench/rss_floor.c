/*
 * rss_floor: the least memory any EST client built on libcurl and OpenSSL can take here.
 *
 * It loads what tessera-agent must load to enroll over mutual TLS (libcurl with its shared
 * libraries, and OpenSSL's TLS), initialises them as a client does (curl_global_init, one easy
 * handle, one TLS client context) and exits without doing any work. bench_agent runs it under
 * wait4 and prints its peak resident set beside the agent's: the part of the agent's figure that
 * no change to our code can remove.
 */
#include <stdio.h>

#include <curl/curl.h>
#include <openssl/ssl.h>

int main(void)
{
    CURL *curl;
    SSL_CTX *ctx;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "rss_floor: curl_global_init failed\n");
        return 1;
    }
    curl = curl_easy_init();
    ctx = SSL_CTX_new(TLS_client_method());
    if (curl == NULL || ctx == NULL) {
        fprintf(stderr, "rss_floor: cannot make an easy handle or a TLS context\n");
        return 1;
    }
    SSL_CTX_free(ctx);
    curl_easy_cleanup(curl);
    curl_global_cleanup();
    return 0;
}
