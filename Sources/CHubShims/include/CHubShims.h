// Thin C wrappers for what Swift cannot reach directly: Linux calls whose structs are packed
// (epoll_event on x86_64) or whose flags are macros, and OpenSSL macros. No logic lives here.
#pragma once
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

/// One readiness event, unpacked (struct epoll_event is packed on x86_64).
typedef struct {
    uint32_t events;
    uint64_t data;
} hub_epoll_event;

int hub_epoll_create(void);
int hub_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);
/// Waits and copies up to `max` events into `out`; returns the count, or -1 with errno.
int hub_epoll_wait(int epfd, hub_epoll_event *out, int max, int timeout_ms);

uint32_t hub_EPOLLIN(void);
uint32_t hub_EPOLLOUT(void);
uint32_t hub_EPOLLERR(void);
uint32_t hub_EPOLLHUP(void);
uint32_t hub_EPOLLRDHUP(void);
uint32_t hub_EPOLLET(void);
int hub_EPOLL_CTL_ADD(void);
int hub_EPOLL_CTL_MOD(void);
int hub_EPOLL_CTL_DEL(void);

int hub_eventfd(void);
int hub_accept4(int fd, struct sockaddr *addr, socklen_t *len);
int hub_socket_nonblocking(int domain, int type, int protocol);
/// Sends with MSG_NOSIGNAL so a peer reset never raises SIGPIPE.
ssize_t hub_send(int fd, const void *buf, size_t len);
ssize_t hub_writev(int fd, const struct iovec *iov, int iovcnt);
int hub_raise_nofile_limit(uint64_t *soft_out, uint64_t *hard_out);
int hub_block_signals_for_threads(void);
/// Waits for SIGTERM, SIGINT or SIGHUP (blocked in every thread) and returns its number.
int hub_wait_signal(void);
int hub_pin_to_cpu(int cpu);
int hub_gettid(void);

// OpenSSL macros and callbacks.
typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
int hub_ssl_ctx_set_min_tls12(SSL_CTX *ctx);
/// Installs an ALPN selector that accepts only `http/1.1` (and lets a client that offers no
/// ALPN through): the hub speaks nothing else over TLS.
void hub_ssl_ctx_select_alpn_http11(SSL_CTX *ctx);
long hub_ssl_ctx_set_release_buffers(SSL_CTX *ctx);
int hub_ssl_set_sni(SSL *ssl, const char *name);
/// SSL_OP_* bits are built by a function-like macro (SSL_OP_BIT) that Swift cannot import.
uint64_t hub_SSL_OP_NO_RENEGOTIATION(void);
uint64_t hub_SSL_OP_CIPHER_SERVER_PREFERENCE(void);
/// SSL_CTX_set_mode(SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER): lets a would-block SSL_write be retried
/// from a different (e.g. reallocated) buffer holding the same bytes.
long hub_ssl_ctx_set_accept_moving_write_buffer(SSL_CTX *ctx);

// zlib: deflateInit2/inflateInit2 are macros (they pass ZLIB_VERSION and sizeof(z_stream)),
// so Swift cannot call them. `strm` is a `z_stream *`; it is typed `void *` so that this header
// does not need <zlib.h> (shims.c includes it). Return values are zlib's (Z_OK, ...).
int hub_z_deflateInit2(void *strm, int level, int method, int windowBits, int memLevel, int strategy);
int hub_z_inflateInit2(void *strm, int windowBits);

/// The event loop running on this thread (an unretained object pointer), or NULL. Set once by
/// the loop's thread; read by code that must find "its" loop (per-loop clients) without a lookup.
void hub_set_current_loop(void *loop);
void *hub_current_loop(void);
