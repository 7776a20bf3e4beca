#define _GNU_SOURCE
#include "CHubShims.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <signal.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <openssl/ssl.h>

int hub_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int hub_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = data;
    return epoll_ctl(epfd, op, fd, &ev);
}

int hub_epoll_wait(int epfd, hub_epoll_event *out, int max, int timeout_ms) {
    struct epoll_event evs[1024];
    if (max > 1024) max = 1024;
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    for (int i = 0; i < n; i++) {
        out[i].events = evs[i].events;
        out[i].data = evs[i].data.u64;
    }
    return n;
}

uint32_t hub_EPOLLIN(void) { return EPOLLIN; }
uint32_t hub_EPOLLOUT(void) { return EPOLLOUT; }
uint32_t hub_EPOLLERR(void) { return EPOLLERR; }
uint32_t hub_EPOLLHUP(void) { return EPOLLHUP; }
uint32_t hub_EPOLLRDHUP(void) { return EPOLLRDHUP; }
uint32_t hub_EPOLLET(void) { return EPOLLET; }
int hub_EPOLL_CTL_ADD(void) { return EPOLL_CTL_ADD; }
int hub_EPOLL_CTL_MOD(void) { return EPOLL_CTL_MOD; }
int hub_EPOLL_CTL_DEL(void) { return EPOLL_CTL_DEL; }

int hub_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int hub_accept4(int fd, struct sockaddr *addr, socklen_t *len) {
    return accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int hub_socket_nonblocking(int domain, int type, int protocol) {
    return socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
}

ssize_t hub_send(int fd, const void *buf, size_t len) { return send(fd, buf, len, MSG_NOSIGNAL); }

ssize_t hub_writev(int fd, const struct iovec *iov, int iovcnt) {
    // sendmsg instead of writev: same gather write, plus MSG_NOSIGNAL.
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = (struct iovec *)iov;
    msg.msg_iovlen = (size_t)iovcnt;
    return sendmsg(fd, &msg, MSG_NOSIGNAL);
}

int hub_raise_nofile_limit(uint64_t *soft_out, uint64_t *hard_out) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    rl.rlim_cur = rl.rlim_max;
    int rc = setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    *soft_out = (uint64_t)rl.rlim_cur;
    *hard_out = (uint64_t)rl.rlim_max;
    return rc;
}

static sigset_t hub_signal_set(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    return set;
}

int hub_block_signals_for_threads(void) {
    sigset_t set = hub_signal_set();
    signal(SIGPIPE, SIG_IGN);
    return pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int hub_wait_signal(void) {
    sigset_t set = hub_signal_set();
    int sig = 0;
    for (;;) {
        int rc = sigwait(&set, &sig);
        if (rc == 0) return sig;
        if (rc != EINTR) return -1;
    }
}

int hub_pin_to_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

int hub_gettid(void) { return (int)syscall(SYS_gettid); }

int hub_ssl_ctx_set_min_tls12(SSL_CTX *ctx) { return SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION); }

static int hub_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                           const unsigned char *in, unsigned int inlen, void *arg) {
    (void)ssl; (void)arg;
    static const unsigned char http11[] = "http/1.1";
    unsigned int i = 0;
    while (i < inlen) {
        unsigned int n = in[i];
        if (i + 1 + n > inlen) break;
        if (n == 8 && memcmp(in + i + 1, http11, 8) == 0) {
            *out = in + i + 1;
            *outlen = 8;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

void hub_ssl_ctx_select_alpn_http11(SSL_CTX *ctx) { SSL_CTX_set_alpn_select_cb(ctx, hub_alpn_select, NULL); }

long hub_ssl_ctx_set_release_buffers(SSL_CTX *ctx) { return SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS); }

int hub_ssl_set_sni(SSL *ssl, const char *name) { return (int)SSL_set_tlsext_host_name(ssl, name); }

uint64_t hub_SSL_OP_NO_RENEGOTIATION(void) { return SSL_OP_NO_RENEGOTIATION; }
uint64_t hub_SSL_OP_CIPHER_SERVER_PREFERENCE(void) { return SSL_OP_CIPHER_SERVER_PREFERENCE; }
long hub_ssl_ctx_set_accept_moving_write_buffer(SSL_CTX *ctx) { return SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER); }

#include <zlib.h>

int hub_z_deflateInit2(void *strm, int level, int method, int windowBits, int memLevel, int strategy) {
    return deflateInit2((z_stream *)strm, level, method, windowBits, memLevel, strategy);
}

int hub_z_inflateInit2(void *strm, int windowBits) { return inflateInit2((z_stream *)strm, windowBits); }

// A C thread-local is one TLS-relative load; Swift has no equivalent without pthread_getspecific.
static __thread void *hub_loop_of_thread = NULL;
void hub_set_current_loop(void *loop) { hub_loop_of_thread = loop; }
void *hub_current_loop(void) { return hub_loop_of_thread; }
