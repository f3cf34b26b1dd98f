// fl_supervise.h — system calls the supervisor needs to keep services alive, which Swift's Glibc
// import does not reach: notify datagrams with their sender's credentials (SCM_CREDENTIALS,
// SCM_PIDFD), pidfd information (PIDFD_GET_INFO), and moving a pipe's contents into a file
// without copying (splice). All run in the supervisor itself, never between clone and exec.
#ifndef FL_SUPERVISE_H
#define FL_SUPERVISE_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Who sent a notify datagram, as the kernel vouches for it.
struct fl_notify_sender {
    int32_t pid;        ///< SCM_CREDENTIALS pid, in the receiver's pid namespace (0: none)
    uint32_t uid;
    uint32_t gid;
    int32_t pidfd;      ///< SCM_PIDFD (Linux 6.5+): the sender, even if it has exited since; -1: none
    int32_t truncated;  ///< the datagram or its control data did not fit
};

/// A unix datagram socket bound at `path` (created mode 0666: services run as any user; who may
/// speak is decided by credentials), non-blocking, with SO_PASSCRED and, where the kernel has it,
/// SO_PASSPIDFD. Returns the descriptor or -errno.
/// Why: sockaddr_un and the socket options are awkward from Swift.
int fl_notify_bind(const char *path);

/// Receives one datagram (MSG_DONTWAIT) into `buffer` and its sender into `sender`. Descriptors
/// passed along (SCM_RIGHTS) are closed at once: a service must not be able to make the
/// supervisor hold its files. Returns the length, or -errno (-EAGAIN: nothing queued).
/// Why: recvmsg control messages cannot be walked from Swift (CMSG_* are macros).
long fl_notify_receive(int fd, char *buffer, size_t capacity, struct fl_notify_sender *sender);

/// What PIDFD_GET_INFO (Linux 6.13+) reports; `mask` says which fields are valid.
struct fl_pidfd_info {
    uint64_t mask;
    uint64_t cgroup_id;     ///< PIDFD_INFO_CGROUPID: the cgroup2 cgroup's id (its directory's inode)
    int32_t pid;            ///< PIDFD_INFO_PID
    int32_t exit_code;      ///< PIDFD_INFO_EXIT (6.15+): the wait status, once the process is reaped
};

/// Bits of fl_pidfd_info.mask.
enum {
    FL_PIDFD_INFO_PID = 1 << 0,
    FL_PIDFD_INFO_CGROUPID = 1 << 2,
    FL_PIDFD_INFO_EXIT = 1 << 3,
};

/// ioctl(pidfd, PIDFD_GET_INFO) asking for `mask`. Returns 0 or -errno.
/// Why: the cgroup of a notify sender that has already exited, and the exit status of a process
/// that is not our child (adopted after an agent restart), are only known through it.
int fl_pidfd_info(int pidfd, uint64_t mask, struct fl_pidfd_info *info);

/// splice(pipe_fd → file_fd at offset), non-blocking, at most `length` bytes. Returns the bytes
/// moved, or -errno. What leaves the pipe is exactly what lands in the file, even when the caller
/// is killed meanwhile: the log path depends on that.
/// Why: Swift's Glibc import leaves splice out (_GNU_SOURCE).
long fl_splice_to_file(int pipe_fd, int file_fd, int64_t offset, size_t length);

/// Bytes queued in a pipe (FIONREAD), or -errno.
int fl_pipe_queued(int fd);

/// fcntl(F_SETPIPE_SZ). Returns the size granted, or -errno.
/// Why: F_SETPIPE_SZ needs _GNU_SOURCE.
int fl_pipe_resize(int fd, int bytes);

/// epoll_ctl(EPOLL_CTL_ADD) for readability, edge-triggered (EPOLLET) when `edge` is set.
/// Why: as fl_epoll_add, with the trigger mode the log pump needs.
int fl_epoll_add_mode(int epfd, int fd, uint64_t token, int edge);

/// socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC) and a connect to 127.0.0.1:`port`.
/// SO_LINGER 0: closing it resets the connection. Returns the descriptor (connected or
/// connecting) or -errno.
/// Why: health probes are plain non-blocking sockets (sockaddr_in is awkward from Swift).
int fl_loopback_connect(int port);

/// Like fl_loopback_connect, but the socket belongs to the network namespace `netns_fd` refers
/// to (a /proc/PID/ns/net descriptor): the calling thread enters it with setns, creates the
/// socket, and returns to `home_netns_fd` (a socket stays in the namespace it was created in, so
/// the connect and all later use may happen anywhere). `reset_on_close`: SO_LINGER 0, as for
/// probes. Returns the descriptor (connected or connecting), or -errno; -ENOTRECOVERABLE when
/// the thread could not return home (it must not create sockets any more).
/// Why: setns(CLONE_NEWNET) changes only the calling thread, which the supervisor keeps for this.
int fl_loopback_connect_in(int netns_fd, int home_netns_fd, int port, int reset_on_close);

/// open("/proc/PID/ns/net") of the process `pidfd` holds, checked afterwards to still be that
/// process (pidfd_send_signal 0), so a recycled pid cannot hand back a stranger's namespace.
/// Returns the descriptor or -errno (-ESRCH: the process is gone).
/// Why: the namespace outlives neither the process nor this descriptor's need, and opening it
/// once per process makes every later setns cheap.
int fl_open_net_namespace(int pidfd, int pid);

/// socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC), SO_REUSEADDR, bind to
/// `ipv4`:`port` and listen with `backlog`. Returns the descriptor or -errno; *failed_call names
/// the call that failed ("socket", "bind", "listen", "inet_pton").
/// Why: a published port is bound before its service is launched, synchronously, so that a port
/// in use fails the launch with a clear message (sockaddr_in is awkward from Swift).
int fl_tcp_listen(const char *ipv4, int port, int backlog, const char **failed_call);

/// Like fl_tcp_listen on 127.0.0.1, but the socket belongs to the network namespace `netns_fd`
/// (entered and left as fl_loopback_connect_in does), bound with IP_FREEBIND: the namespace's
/// loopback may not be up yet (a child between clone and exec brings it up), and the listener
/// takes connections once it is. Returns the descriptor or -errno (-ENOTRECOVERABLE as there).
/// Why: an upstream's local port exists inside a private namespace before the service's first
/// instruction, so the service never finds it refused.
int fl_loopback_listen_in(int netns_fd, int home_netns_fd, int port, int backlog, const char **failed_call);

/// The pending error of a socket (SO_ERROR): 0 once a connect has succeeded.
int fl_socket_error(int fd);

/// epoll_wait returning each ready event's token and its EPOLL* bits (at most 64).
/// Why: struct epoll_event is packed on x86_64, which Swift does not import faithfully.
int fl_epoll_wait_events(int epfd, uint64_t *tokens, uint32_t *events, int max_events, int timeout_ms);

/// epoll_ctl(op, fd) with `events` (EPOLL* bits) and `token` as the event's data; op is
/// EPOLL_CTL_ADD (1) or EPOLL_CTL_MOD (3). Returns 0 or -errno.
/// Why: as fl_epoll_add, for probes that wait to be writable (a connect) and then readable.
int fl_epoll_set(int epfd, int op, int fd, uint64_t token, uint32_t events);

/// The calling thread's kernel id, and its name (at most 15 bytes, for top -H and /proc).
/// Why: gettid and pthread_setname_np are GNU extensions, which Glibc's Swift module leaves out.
int fl_thread_id(void);
int fl_thread_set_name(const char *name);

/// The EPOLL* bits a watcher looks at.
enum {
    FL_EPOLLIN = 0x001,
    FL_EPOLLOUT = 0x004,
    FL_EPOLLERR = 0x008,
    FL_EPOLLHUP = 0x010,
};

#ifdef __cplusplus
}
#endif

#endif
