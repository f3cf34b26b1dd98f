// fl_spawn.h — the code that runs between clone3 and execve, and the raw syscall wrappers the
// Swift side needs.
//
// Why this is C (DESIGN.md, decision 2): a Swift process is multithreaded, so after clone only
// async-signal-safe code may run in the child; even malloc can deadlock on a lock another thread
// held at the moment of the clone. The child here calls raw system calls only (no libc wrapper
// that touches errno, locks or broadcasts to other threads, like glibc's setresuid does) and reads
// nothing but buffers the parent prepared before clone3. The parent side of fl_spawn is ordinary C.
//
// Shape borrowed from apple/containerization (prefixed symbols, exec completion over a
// close-on-exec pipe) and crun (every failure names the call and the path).
#ifndef FL_SPAWN_H
#define FL_SPAWN_H

#include <stdint.h>
#include <sys/types.h>
#include <signal.h>

#ifdef __cplusplus
extern "C" {
#endif

/// What the child does with one entry of `fl_spawn_request.mounts`, in order.
enum fl_mount_kind {
    /// mount(source, target, fstype, flags, data): a fresh filesystem (proc, sysfs, tmpfs, devpts).
    FL_MOUNT_FILESYSTEM = 1,
    /// A host path cloned with open_tree(OPEN_TREE_CLONE) before pivot_root, given its
    /// attributes (`attr_set`) while detached, then attached at `target` with move_mount.
    /// Host paths stay reachable this way after the old root is gone, and targets resolve
    /// inside the new root, so an image's symlinks cannot point a mount at a host path.
    FL_MOUNT_BIND = 2,
    /// mknod(target, S_IFCHR | mode, device): a device node in the new /dev (not in user namespaces,
    /// where the kernel refuses mknod; the parent asks for FL_MOUNT_BIND of the host node there).
    FL_MOUNT_DEVICE = 3,
    /// symlink(source, target): /dev/fd, /dev/ptmx and friends.
    FL_MOUNT_SYMLINK = 4,
    /// An existing path of the new root bound onto itself and made read-only, nosuid, nodev and
    /// noexec (recursively): /proc/sys and the other kernel knobs. Skipped when absent.
    FL_MOUNT_READONLY = 5,
    /// An existing path hidden: /dev/null bound over a file, an empty read-only tmpfs over a
    /// directory (/proc/kcore, /sys/firmware…). Skipped when absent.
    FL_MOUNT_MASK = 6,
};

/// One filesystem step of the child. Paths are absolute inside the new root
/// (or on the host in host-filesystem mode).
struct fl_mount {
    int32_t kind;               ///< enum fl_mount_kind
    int32_t target_is_file;     ///< FL_MOUNT_BIND: create an empty file (not a directory) to mount on
    uint32_t mode;              ///< FL_MOUNT_DEVICE: permission bits of the node
    uint32_t recursive;         ///< FL_MOUNT_BIND: clone the whole subtree (AT_RECURSIVE)
    uint64_t flags;             ///< FL_MOUNT_FILESYSTEM: MS_* flags
    uint64_t attr_set;          ///< FL_MOUNT_BIND: MOUNT_ATTR_* to set on the clone (read-only, nosuid…)
    uint64_t device;            ///< FL_MOUNT_DEVICE: makedev(major, minor)
    const char *source;
    const char *target;
    const char *fstype;
    const char *data;
};

/// One resource limit, applied with prlimit64 on the child itself.
struct fl_rlimit {
    int32_t resource;
    int32_t reserved;
    uint64_t soft;
    uint64_t hard;
};

/// Where a start failed. The parent turns (stage, errno, index) into a message that names the
/// call and the path, e.g. `pivot_root "/srv/web/rootfs": Invalid argument`.
enum fl_stage {
    FL_STAGE_NONE = 0,
    // Parent side.
    FL_STAGE_PIPE,              ///< pipe2
    FL_STAGE_STACK,             ///< mmap of the child's stack
    FL_STAGE_CLONE3,            ///< clone3
    FL_STAGE_GID_MAP,           ///< write /proc/PID/gid_map
    FL_STAGE_UID_MAP,           ///< write /proc/PID/uid_map
    FL_STAGE_RELEASE,           ///< send on the release socket
    FL_STAGE_STATUS_READ,       ///< poll/read of the status pipe (timeout: ETIMEDOUT)
    // Child side, roughly in the order it runs.
    FL_STAGE_CGROUP_JOIN,       ///< write "0" to a v1 cgroup's `tasks` file (index: which)
    FL_STAGE_WAIT_RELEASE,      ///< read of the release socket (the parent went away: EPIPE)
    FL_STAGE_USERNS_ROOT,       ///< setresgid/setresuid(0) inside a new user namespace
    FL_STAGE_CGROUP_NS,         ///< unshare(CLONE_NEWCGROUP)
    FL_STAGE_SIGNALS,           ///< rt_sigaction resetting dispositions
    FL_STAGE_MOUNT_PRIVATE,     ///< mount --make-rprivate /
    FL_STAGE_ROOTFS_BIND,       ///< bind the rootfs onto itself
    FL_STAGE_ROOTFS_CHDIR,      ///< chdir into the rootfs
    FL_STAGE_OPEN_ROOT,         ///< open the old root before pivot_root
    FL_STAGE_OPEN_TREE,         ///< open_tree of a bind source (index: mount)
    FL_STAGE_MOUNT_SETATTR,     ///< mount_setattr on a detached bind (index: mount)
    FL_STAGE_PIVOT_ROOT,        ///< pivot_root
    FL_STAGE_MKDIR,             ///< creating a mount point (index: mount)
    FL_STAGE_MOUNT,             ///< mount / move_mount / mknod / symlink (index: mount)
    FL_STAGE_DETACH_OLD_ROOT,   ///< umount2(old root, MNT_DETACH)
    FL_STAGE_READONLY_ROOT,     ///< mount_setattr("/", MOUNT_ATTR_RDONLY)
    FL_STAGE_HOSTNAME,          ///< sethostname
    FL_STAGE_RLIMIT,            ///< prlimit64 (index: rlimit)
    FL_STAGE_CAPBSET,           ///< prctl(PR_CAPBSET_DROP) (index: capability)
    FL_STAGE_KEEPCAPS,          ///< prctl(PR_SET_KEEPCAPS)
    FL_STAGE_SETGROUPS,         ///< setgroups
    FL_STAGE_SETRESGID,         ///< setresgid
    FL_STAGE_SETRESUID,         ///< setresuid
    FL_STAGE_CAPSET,            ///< capset
    FL_STAGE_AMBIENT,           ///< prctl(PR_CAP_AMBIENT…) (index: capability)
    FL_STAGE_NO_NEW_PRIVS,      ///< prctl(PR_SET_NO_NEW_PRIVS)
    FL_STAGE_SECCOMP,           ///< seccomp(SECCOMP_SET_MODE_FILTER)
    FL_STAGE_CHDIR,             ///< chdir to the working directory
    FL_STAGE_FDS,               ///< dup3 / close_range (index: target fd)
    FL_STAGE_EXECVE,            ///< execve (index: candidate path)
    FL_STAGE_SETNS,             ///< setns into the namespaces of `join_pidfd` (exec checks)
    FL_STAGE_JOIN_FORK,         ///< the fork that puts an exec check inside a joined pid namespace
    FL_STAGE_LOOPBACK,          ///< socket / ioctl(SIOCGIFFLAGS, SIOCSIFFLAGS) bringing up "lo" in a new net namespace
};

/// What the status pipe carries when a start fails (and what fl_spawn returns for parent stages).
struct fl_spawn_failure {
    int32_t stage;              ///< enum fl_stage
    int32_t error;              ///< errno value
    int32_t index;              ///< which mount / rlimit / capability / candidate, or -1
    int32_t reserved;
};

/// Flags for `fl_spawn_request.options`.
enum fl_spawn_option {
    /// Clone without CLONE_VM (copy the address space, like fork). Slower for a large parent;
    /// used where no clone3 trampoline exists for the architecture, and by tests of that path.
    FL_SPAWN_NO_SHARED_VM = 1,
};

/// Everything the child needs, allocated and filled by the parent before clone3 and kept alive
/// (at the same address) until fl_spawn_finish or fl_spawn_abort returns. The child only reads
/// it (and writes `mount_fds`).
struct fl_spawn_request {
    uint64_t clone_flags;               ///< CLONE_NEW* to create at clone time (not CLONE_NEWCGROUP)
    uint32_t options;                   ///< enum fl_spawn_option
    int32_t unshare_cgroup_ns;          ///< unshare(CLONE_NEWCGROUP) once inside the cgroups
    int32_t timeout_ms;                 ///< how long the parent waits for exec; <= 0: forever
    int32_t cgroup_fd;                  ///< cgroup2 directory for CLONE_INTO_CGROUP, or -1
    int32_t cap_last;                   ///< /proc/sys/kernel/cap_last_cap
    const char *uid_map;                ///< with CLONE_NEWUSER: written by the parent, else NULL
    const char *gid_map;

    const char *rootfs;                 ///< NULL: host filesystem (still a private mount namespace)
    const struct fl_mount *mounts;
    int32_t mount_count;
    int32_t readonly_root;
    int32_t *mount_fds;                 ///< scratch, mount_count entries, written by the child
    const char *hostname;               ///< NULL: leave it
    const struct fl_rlimit *rlimits;
    int32_t rlimit_count;

    uint32_t uid;
    uint32_t gid;
    int32_t group_count;
    const uint32_t *groups;
    uint64_t cap_bounding;              ///< bit n set: keep capability n
    uint64_t cap_effective;
    uint64_t cap_permitted;
    uint64_t cap_inheritable;
    uint64_t cap_ambient;
    int32_t no_new_privs;
    int32_t seccomp_count;              ///< number of struct sock_filter instructions; 0: none
    const void *seccomp_filter;         ///< struct sock_filter[seccomp_count]

    const char *cwd;
    int32_t fd_count;                   ///< fd_from[i] becomes fd_to[i] in the service
    const int32_t *fd_from;
    const int32_t *fd_to;
    const char *const *argv;
    const char *const *envp;
    const char *const *exec_paths;      ///< candidates tried in order while execve says ENOENT
    int32_t exec_path_count;

    /// Exec checks: instead of creating namespaces (clone_flags holds none then), join those of
    /// the process `join_pidfd` refers to: setns(join_pidfd, join_flags). 0: a new service.
    /// The command runs in a grandchild (a pid namespace is entered only by children); the child
    /// waits for it and exits with its status (128 + signal when it was killed by one). The
    /// returned pid and pidfd are the child's.
    uint64_t join_flags;
    int32_t join_pidfd;
};

/// The outcome of fl_spawn.
struct fl_spawn_result {
    int32_t pid;
    int32_t pidfd;
    struct fl_spawn_failure failure;
};

/// A started child that waits for its cgroups (fl_spawn_start … fl_spawn_finish).
struct fl_spawn_pending;

/// Clones the child as `req` describes (into `req->cgroup_fd` with CLONE_INTO_CGROUP when set)
/// and returns at once, while the child sets up its namespaces and filesystem; with a user
/// namespace its id maps are written first. The child then waits, running nothing of the
/// service, for fl_spawn_finish to hand it its other cgroups. NULL on failure, with
/// `out->failure` saying where, and nothing of the child left.
/// Why: creating v1 cgroups (a memory cgroup's mkdir alone is a few hundred microseconds) runs
/// on another CPU alongside the child's mounts instead of before the clone; on cgroup2 the
/// cgroup is made before clone3, since CLONE_INTO_CGROUP needs it.
struct fl_spawn_pending *fl_spawn_start(const struct fl_spawn_request *req, struct fl_spawn_result *out);

/// Releases the child with `tasks_fds` (the open `tasks` files of its v1 cgroups, at most 32),
/// which it joins by writing "0" to each before anything else, and returns once it has called
/// execve (0) or failed (-1, `out->failure` says where; a failure the child reports itself wins
/// over a parent stage it caused). On failure the child is reaped. On success `out->pid` and
/// `out->pidfd` hold the process (CLONE_PIDFD). Frees `pending`; the caller still closes the fds.
/// Why: the only safe way to run code between clone and exec in a multithreaded process.
int fl_spawn_finish(struct fl_spawn_pending *pending, const int32_t *tasks_fds, int32_t tasks_count,
                    struct fl_spawn_result *out);

/// The started child's pid and pidfd, valid until fl_spawn_finish or fl_spawn_abort.
/// Why: the parent may prepare the child's namespaces (a listener inside its network namespace)
/// while the child waits, before anything of the service runs.
int fl_spawn_pending_pid(const struct fl_spawn_pending *pending);
int fl_spawn_pending_pidfd(const struct fl_spawn_pending *pending);

/// Kills and reaps a started child (its cgroups could not be made) and frees `pending`.
void fl_spawn_abort(struct fl_spawn_pending *pending);

/// pidfd_send_signal(2). Why: signal a process by pidfd, never by a pid that may be recycled.
int fl_pidfd_send_signal(int pidfd, int sig);

/// pidfd_open(2). Why: hold a process found by pid (e.g. in cgroup.procs) without racing its reuse.
int fl_pidfd_open(pid_t pid);

/// waitid(P_PIDFD, pidfd, info, options). Why: Swift's Glibc import lacks P_PIDFD; this reaps exactly
/// the process the pidfd refers to.
int fl_waitid_pidfd(int pidfd, siginfo_t *info, int options);

/// The exit status fields of a siginfo_t filled by waitid. Why: Swift cannot reach the union.
void fl_siginfo_exit(const siginfo_t *info, int32_t *code, int32_t *status, int32_t *pid);

/// openat2(dirfd, path, flags | O_CLOEXEC, RESOLVE_IN_ROOT). Why: reading a rootfs's /etc/passwd
/// as if chrooted, so an image's absolute symlink cannot make the supervisor read a host file.
int fl_open_in_root(int dirfd, const char *path, int flags);

/// epoll_create1(EPOLL_CLOEXEC). Why: Swift's Glibc import leaves out <sys/epoll.h>.
int fl_epoll_create(void);

/// eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK). Why: Swift's Glibc import leaves out <sys/eventfd.h>.
int fl_eventfd(void);

/// open(path, O_PATH | O_DIRECTORY | O_CLOEXEC). Why: O_PATH needs _GNU_SOURCE, which Swift's
/// Glibc import does not define; CLONE_INTO_CGROUP takes such a descriptor.
int fl_open_directory_path(const char *path);

/// memfd_create(name, MFD_CLOEXEC). Why: Swift's Glibc import leaves it out; libseccomp exports
/// filters only to a descriptor.
int fl_memfd(const char *name);

/// pipe2(fds, O_CLOEXEC), then O_NONBLOCK on the read end (fds[0]) only: the writer, a child,
/// waits on a full pipe. Why: pipe2 needs _GNU_SOURCE, which Swift's Glibc import does not define.
int fl_pipe_read_nonblocking(int fds[2]);

/// epoll_ctl(EPOLL_CTL_ADD) for readability, with `token` as the event's data. Why: struct
/// epoll_event is packed on x86_64, which Swift does not import faithfully.
int fl_epoll_add(int epfd, int fd, uint64_t token);

/// epoll_ctl(EPOLL_CTL_DEL). Why: the counterpart of fl_epoll_add.
int fl_epoll_del(int epfd, int fd);

/// epoll_wait, returning the ready events' tokens (at most 64). Why: as fl_epoll_add.
int fl_epoll_wait(int epfd, uint64_t *tokens, int max_events, int timeout_ms);

/// prctl(PR_SET_CHILD_SUBREAPER, 1). Why: orphans of services come back to the supervisor.
int fl_set_child_subreaper(void);

/// Whether this build clones with a shared address space (CLONE_VM) by default.
int fl_spawn_shares_vm(void);

#ifdef __cplusplus
}
#endif

#endif
