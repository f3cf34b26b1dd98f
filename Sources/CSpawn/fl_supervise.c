// fl_supervise.c — see include/fl_supervise.h for why each function exists.
#define _GNU_SOURCE
#include "fl_supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <pthread.h>

#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif
#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04
#endif

/// The kernel's struct pidfd_info up to exit_code (PIDFD_INFO_SIZE_VER0, 64 bytes; uapi pidfd.h).
struct fl_kernel_pidfd_info {
    uint64_t mask;
    uint64_t cgroupid;
    uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
    int32_t exit_code;
};
#define FL_PIDFD_GET_INFO _IOWR(0xFF, 11, struct fl_kernel_pidfd_info)

int fl_notify_bind(const char *path) {
    struct sockaddr_un address;
    memset(&address, 0, sizeof address);
    address.sun_family = AF_UNIX;
    size_t length = strlen(path);
    if (length >= sizeof address.sun_path) return -ENAMETOOLONG;
    memcpy(address.sun_path, path, length);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0) goto fail;
    // Older kernels refuse SO_PASSPIDFD; credentials then come from SCM_CREDENTIALS alone.
    (void)setsockopt(fd, SOL_SOCKET, SO_PASSPIDFD, &one, sizeof one);
    unlink(path);
    if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0) goto fail;
    if (chmod(path, 0666) < 0) goto fail;
    return fd;
fail:;
    int error = errno;
    close(fd);
    return -error;
}

long fl_notify_receive(int fd, char *buffer, size_t capacity, struct fl_notify_sender *sender) {
    memset(sender, 0, sizeof *sender);
    sender->pidfd = -1;
    union {
        struct cmsghdr align;
        char bytes[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(int) * 253)];
    } control;
    struct iovec iov = {buffer, capacity};
    struct msghdr message;
    memset(&message, 0, sizeof message);
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control.bytes;
    message.msg_controllen = sizeof control.bytes;
    ssize_t n;
    do {
        n = recvmsg(fd, &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET) continue;
        if (header->cmsg_type == SCM_CREDENTIALS && header->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
            struct ucred credentials;
            memcpy(&credentials, CMSG_DATA(header), sizeof credentials);
            sender->pid = credentials.pid;
            sender->uid = credentials.uid;
            sender->gid = credentials.gid;
        } else if (header->cmsg_type == SCM_PIDFD && header->cmsg_len >= CMSG_LEN(sizeof(int))) {
            memcpy(&sender->pidfd, CMSG_DATA(header), sizeof(int));
        } else if (header->cmsg_type == SCM_RIGHTS) {
            size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < count; i++) {
                int passed;
                memcpy(&passed, CMSG_DATA(header) + i * sizeof(int), sizeof passed);
                close(passed);
            }
        }
    }
    if ((size_t)n > capacity || (message.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) sender->truncated = 1;
    return (size_t)n > capacity ? (long)capacity : (long)n;
}

int fl_pidfd_info(int pidfd, uint64_t mask, struct fl_pidfd_info *info) {
    struct fl_kernel_pidfd_info kernel;
    memset(&kernel, 0, sizeof kernel);
    kernel.mask = mask;
    memset(info, 0, sizeof *info);
    if (ioctl(pidfd, FL_PIDFD_GET_INFO, &kernel) < 0) return -errno;
    info->mask = kernel.mask;
    info->cgroup_id = kernel.cgroupid;
    info->pid = (int32_t)kernel.pid;
    info->exit_code = kernel.exit_code;
    return 0;
}

long fl_splice_to_file(int pipe_fd, int file_fd, int64_t offset, size_t length) {
    loff_t position = offset;
    ssize_t n;
    do {
        n = splice(pipe_fd, NULL, file_fd, &position, length, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : (long)n;
}

int fl_pipe_queued(int fd) {
    int queued = 0;
    if (ioctl(fd, FIONREAD, &queued) < 0) return -errno;
    return queued;
}

int fl_pipe_resize(int fd, int bytes) {
    int granted = fcntl(fd, F_SETPIPE_SZ, bytes);
    return granted < 0 ? -errno : granted;
}

int fl_epoll_add_mode(int epfd, int fd, uint64_t token, int edge) {
    struct epoll_event event;
    memset(&event, 0, sizeof event);
    event.events = EPOLLIN | (edge ? EPOLLET : 0);
    event.data.u64 = token;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event) < 0 ? -errno : 0;
}

int fl_epoll_wait_events(int epfd, uint64_t *tokens, uint32_t *events, int max_events, int timeout_ms) {
    struct epoll_event ready[64];
    if (max_events > 64) max_events = 64;
    int n = epoll_wait(epfd, ready, max_events, timeout_ms);
    if (n < 0) return -errno;
    for (int i = 0; i < n; i++) {
        tokens[i] = ready[i].data.u64;
        events[i] = ready[i].events;
    }
    return n;
}

int fl_epoll_set(int epfd, int op, int fd, uint64_t token, uint32_t events) {
    struct epoll_event event;
    memset(&event, 0, sizeof event);
    event.events = events;
    event.data.u64 = token;
    return epoll_ctl(epfd, op, fd, &event) < 0 ? -errno : 0;
}

/// Connects `fd` to 127.0.0.1:`port` without waiting; closes it on failure.
static int fl_connect_loopback_socket(int fd, int port, int reset_on_close) {
    // Closed with a reset, as HAProxy closes its check connections: no FIN exchange, and no
    // TIME_WAIT socket left per check.
    if (reset_on_close) {
        struct linger linger = {1, 0};
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof linger);
    }
    struct sockaddr_in address;
    memset(&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_port = htons((uint16_t)port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) < 0 && errno != EINPROGRESS) {
        int error = errno;
        close(fd);
        return -error;
    }
    return fd;
}

int fl_loopback_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    return fl_connect_loopback_socket(fd, port, 1);
}

/// A TCP socket of the namespace `netns_fd`, made by entering it and coming back home; -errno,
/// or -ENOTRECOVERABLE when the thread could not come back.
static int fl_tcp_socket_in(int netns_fd, int home_netns_fd) {
    if (setns(netns_fd, CLONE_NEWNET) < 0) return -errno;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int error = fd < 0 ? errno : 0;
    if (setns(home_netns_fd, CLONE_NEWNET) < 0) {
        if (fd >= 0) close(fd);
        return -ENOTRECOVERABLE;
    }
    return fd < 0 ? -error : fd;
}

int fl_loopback_connect_in(int netns_fd, int home_netns_fd, int port, int reset_on_close) {
    int fd = fl_tcp_socket_in(netns_fd, home_netns_fd);
    if (fd < 0) return fd;
    return fl_connect_loopback_socket(fd, port, reset_on_close);
}

int fl_open_net_namespace(int pidfd, int pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/net", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? -ESRCH : -errno;
    if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    return fd;
}

int fl_tcp_listen(const char *ipv4, int port, int backlog, const char **failed_call) {
    struct sockaddr_in address;
    memset(&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, ipv4, &address.sin_addr) != 1) {
        *failed_call = "inet_pton";
        return -EINVAL;
    }
    *failed_call = "socket";
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    // As every server: a restarted instance may rebind while the last one's connections linger
    // in TIME_WAIT; a port another socket listens on is still refused.
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    *failed_call = "bind";
    if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0) goto fail;
    *failed_call = "listen";
    if (listen(fd, backlog) < 0) goto fail;
    *failed_call = NULL;
    return fd;
fail:;
    int error = errno;
    close(fd);
    return -error;
}

int fl_loopback_listen_in(int netns_fd, int home_netns_fd, int port, int backlog, const char **failed_call) {
    *failed_call = "socket";
    int fd = fl_tcp_socket_in(netns_fd, home_netns_fd);
    if (fd < 0) return fd;
    int error;
    struct sockaddr_in address;
    memset(&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_port = htons((uint16_t)port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    *failed_call = "setsockopt";
    if (setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof one) < 0) goto fail;
    *failed_call = "bind";
    if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0) goto fail;
    *failed_call = "listen";
    if (listen(fd, backlog) < 0) goto fail;
    *failed_call = NULL;
    return fd;
fail:
    error = errno;
    close(fd);
    return -error;
}

int fl_socket_error(int fd) {
    int error = 0;
    socklen_t length = sizeof error;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) < 0) return errno;
    return error;
}

int fl_thread_id(void) { return (int)gettid(); }

int fl_thread_set_name(const char *name) { return pthread_setname_np(pthread_self(), name); }
