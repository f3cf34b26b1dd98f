// fl_spawn.c — clone3 and the child's work up to execve. See include/fl_spawn.h for why.
//
// Everything after the clone3 in fl_child_* is async-signal-safe: raw system calls through
// fl_syscall.h on memory the parent prepared, stack variables, nothing else. Order follows runc's
// libcontainer (standard_init_linux.go, rootfs_linux.go) where it matters:
//   (user namespace maps) → loopback up → signal dispositions → mounts, pivot_root → join the v1 cgroups
//   (the parent hands over their tasks files once made) → cgroup namespace → hostname → rlimits but RLIMIT_NOFILE → bounding set
//   → groups, gid, uid → capset, ambient → no_new_privs
//   → working directory → file descriptors → RLIMIT_NOFILE → seccomp (last, so the filter need not allow setup)
//   → signal mask → execve.
#define _GNU_SOURCE
#include "fl_spawn.h"
#include "fl_syscall.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

/// The kernel's struct clone_args (version 2, since 5.7). Our own copy because <linux/sched.h>
/// and glibc's <sched.h> collide.
struct fl_clone_args {
    uint64_t flags;
    uint64_t pidfd;
    uint64_t child_tid;
    uint64_t parent_tid;
    uint64_t exit_signal;
    uint64_t stack;
    uint64_t stack_size;
    uint64_t tls;
    uint64_t set_tid;
    uint64_t set_tid_size;
    uint64_t cgroup;
};

/// The kernel's struct sigaction for rt_sigaction (not glibc's, which differs in layout).
struct fl_kernel_sigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
};

/// What the child needs besides the request: its end of the status pipe and of the release socket.
struct fl_child_context {
    const struct fl_spawn_request *req;
    int status_fd;
    int release_fd;
};

/// The child's stack when it shares the parent's address space. The child only walks paths
/// (one PATH_MAX buffer) and calls the kernel; 256 KiB leaves a wide margin for sanitizers.
#define FL_STACK_BYTES (256 * 1024)
#define FL_PATH_BYTES 4096
/// At most this many v1 hierarchies' `tasks` files travel to the child (the kernel has 14 v1
/// controllers).
#define FL_MAX_CGROUP_FDS 32

/// Room for the SCM_RIGHTS message of the release that carries those files.
union fl_cgroup_fds_control {
    struct cmsghdr header;
    char bytes[CMSG_SPACE(sizeof(int) * FL_MAX_CGROUP_FDS)];
};

#if defined(__x86_64__)
#define FL_HAVE_CLONE3_VM 1
// clone3 with a new stack for a CLONE_VM child, after glibc's sysdeps/unix/sysv/linux/x86_64/clone3.S.
// long fl_clone3_vm(struct fl_clone_args *args, size_t size, int (*fn)(void *), void *arg)
// The child cannot return from the syscall into C: its stack is empty. It calls fn(arg) on the
// new stack and exits with its result. rdx and r8 survive the syscall (only rcx, r11 are clobbered).
__asm__(".text\n"
        ".p2align 4\n"
        ".type fl_clone3_vm,@function\n"
        "fl_clone3_vm:\n"
        "    mov %rcx, %r8\n"
        "    mov $435, %eax\n"
        "    syscall\n"
        "    test %rax, %rax\n"
        "    jz 1f\n"
        "    ret\n"
        "1:\n"
        "    xor %ebp, %ebp\n"
        "    and $-16, %rsp\n"
        "    mov %r8, %rdi\n"
        "    call *%rdx\n"
        "    mov %rax, %rdi\n"
        "    mov $60, %eax\n"
        "    syscall\n"
        "    hlt\n"
        ".size fl_clone3_vm, .-fl_clone3_vm\n");
long fl_clone3_vm(struct fl_clone_args *args, size_t size, int (*fn)(void *), void *arg);
#else
#define FL_HAVE_CLONE3_VM 0
#endif

int fl_spawn_shares_vm(void) { return FL_HAVE_CLONE3_VM; }

// Child stacks are kept for reuse: a fresh mmap, guard-page mprotect (which splits the mapping)
// and munmap per launch cost tens of microseconds. A few suffice; concurrent launches beyond
// that get a new stack and free it afterwards.
#define FL_STACK_POOL 8
static pthread_mutex_t fl_stack_lock = PTHREAD_MUTEX_INITIALIZER;
static void *fl_stack_pool[FL_STACK_POOL];
static int fl_stack_count = 0;

static void *fl_stack_take(void) {
    void *stack = NULL;
    pthread_mutex_lock(&fl_stack_lock);
    if (fl_stack_count > 0) stack = fl_stack_pool[--fl_stack_count];
    pthread_mutex_unlock(&fl_stack_lock);
    if (stack) return stack;
    stack = mmap(NULL, FL_STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) return NULL;
    // A guard page: an overflow faults instead of writing over the parent's memory.
    mprotect(stack, 4096, PROT_NONE);
    return stack;
}

static void fl_stack_give_back(void *stack) {
    pthread_mutex_lock(&fl_stack_lock);
    if (fl_stack_count < FL_STACK_POOL) {
        fl_stack_pool[fl_stack_count++] = stack;
        stack = NULL;
    }
    pthread_mutex_unlock(&fl_stack_lock);
    if (stack) munmap(stack, FL_STACK_BYTES);
}

// MARK: - Child side: raw system calls only.

__attribute__((noreturn)) static void fl_child_fail(const struct fl_child_context *ctx, int stage, long rc,
                                                     int index) {
    struct fl_spawn_failure failure;
    failure.stage = stage;
    failure.error = (int32_t)(rc < 0 ? -rc : rc);
    failure.index = index;
    failure.reserved = 0;
    FL_SYS3(SYS_write, ctx->status_fd, &failure, sizeof failure);
    for (;;) FL_SYS1(SYS_exit, 127);
}

/// Waits for one message on the release socket (the parent has written the id maps, or made our
/// v1 cgroups) and joins the cgroups whose `tasks` files it carries (SCM_RIGHTS) by writing "0"
/// to each. A single thread
/// moving itself skips the kernel's global cgroup_threadgroup_rwsem (cgroup_procs_write_start),
/// whose write lock costs a full RCU grace period, several milliseconds, whenever it has not
/// been taken for a while: writing a pid to cgroup.procs, from either side, always takes it.
static void fl_child_wait_release(const struct fl_child_context *ctx) {
    char byte = 0;
    struct iovec data = {&byte, 1};
    union fl_cgroup_fds_control control;
    struct msghdr message;
    for (size_t i = 0; i < sizeof message; i++) ((char *)&message)[i] = 0;
    message.msg_iov = &data;
    message.msg_iovlen = 1;
    message.msg_control = control.bytes;
    message.msg_controllen = sizeof control.bytes;
    long rc;
    do {
        rc = FL_SYS3(SYS_recvmsg, ctx->release_fd, &message, MSG_CMSG_CLOEXEC);
    } while (rc == -EINTR);
    if (rc != 1) fl_child_fail(ctx, FL_STAGE_WAIT_RELEASE, rc < 0 ? rc : -EPIPE, -1);
    if (message.msg_flags & MSG_CTRUNC) fl_child_fail(ctx, FL_STAGE_WAIT_RELEASE, -EMSGSIZE, -1);
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    if (header == 0) return;
    if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS)
        fl_child_fail(ctx, FL_STAGE_WAIT_RELEASE, -EPROTO, -1);
    int count = (int)((header->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    const int *fds = (const int *)CMSG_DATA(header);
    for (int i = 0; i < count; i++) {
        int fd = fds[i];
        rc = FL_SYS3(SYS_write, fd, "0", 1);
        if (rc < 0) fl_child_fail(ctx, FL_STAGE_CGROUP_JOIN, rc, i);
        FL_SYS1(SYS_close, fd);
    }
}

static size_t fl_strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

/// Creates every missing directory on the way to `path`, then the last component as a directory
/// (final = 0), an empty file (final = 1) or nothing (final = 2). Existing entries are fine: the
/// mount that follows reports a wrong type precisely. Returns 0 or -errno.
static long fl_make_path(const char *path, int final) {
    char buffer[FL_PATH_BYTES];
    size_t length = fl_strlen(path);
    if (length == 0 || length >= sizeof buffer) return -ENAMETOOLONG;
    for (size_t i = 0; i <= length; i++) buffer[i] = path[i];
    for (size_t i = 1; i < length; i++) {
        if (buffer[i] != '/') continue;
        buffer[i] = '\0';
        long rc = FL_SYS3(SYS_mkdirat, AT_FDCWD, buffer, 0755);
        buffer[i] = '/';
        if (rc < 0 && rc != -EEXIST) return rc;
    }
    if (final == 0) {
        long rc = FL_SYS3(SYS_mkdirat, AT_FDCWD, buffer, 0755);
        if (rc < 0 && rc != -EEXIST) return rc;
    } else if (final == 1) {
        long fd = FL_SYS4(SYS_openat, AT_FDCWD, buffer, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0 && fd != -EEXIST && fd != -EISDIR && fd != -ELOOP) return fd;
        if (fd >= 0) FL_SYS1(SYS_close, fd);
    }
    return 0;
}

/// open_tree clones of every bind source, while host paths are still reachable (before pivot_root).
/// Attributes go on the detached clone so they never apply, even briefly, to a visible mount.
static void fl_child_open_binds(const struct fl_child_context *ctx) {
    const struct fl_spawn_request *req = ctx->req;
    for (int i = 0; i < req->mount_count; i++) {
        const struct fl_mount *m = &req->mounts[i];
        req->mount_fds[i] = -1;
        if (m->kind != FL_MOUNT_BIND) continue;
        unsigned int flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (m->recursive ? AT_RECURSIVE : 0);
        long fd = FL_SYS3(SYS_open_tree, AT_FDCWD, m->source, flags);
        if (fd < 0) fl_child_fail(ctx, FL_STAGE_OPEN_TREE, fd, i);
        req->mount_fds[i] = (int32_t)fd;
        if (m->attr_set == 0) continue;
        struct mount_attr attr;
        attr.attr_set = m->attr_set;
        attr.attr_clr = 0;
        attr.propagation = 0;
        attr.userns_fd = 0;
        long rc = FL_SYS5(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | (m->recursive ? AT_RECURSIVE : 0), &attr,
                          sizeof attr);
        if (rc < 0) fl_child_fail(ctx, FL_STAGE_MOUNT_SETATTR, rc, i);
    }
}

/// runc's readonlyPath: bind the path onto itself, then make that mount (and any below it)
/// read-only. Returns 0 when the path does not exist (kernels differ in what /proc holds).
static long fl_child_readonly(const char *target) {
    long rc = FL_SYS5(SYS_mount, target, target, 0, MS_BIND | MS_REC, 0);
    if (rc == -ENOENT) return 0;
    if (rc < 0) return rc;
    struct mount_attr attr;
    attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    attr.attr_clr = 0;
    attr.propagation = 0;
    attr.userns_fd = 0;
    return FL_SYS5(SYS_mount_setattr, AT_FDCWD, target, AT_RECURSIVE, &attr, sizeof attr);
}

/// runc's maskPath: /dev/null (the new root's, made earlier in the plan) over a file, an empty
/// read-only tmpfs over a directory. Returns 0 when the path does not exist. The first masked
/// directory gets the tmpfs and is remembered in `*masked_dir`; later ones get a bind of it: the
/// same empty read-only superblock, without allocating another one per directory.
static long fl_child_mask(const char *target, const char **masked_dir) {
    struct stat info;
    long rc = FL_SYS4(SYS_newfstatat, AT_FDCWD, target, &info, 0);
    if (rc == -ENOENT) return 0;
    if (rc < 0) return rc;
    if (!S_ISDIR(info.st_mode)) return FL_SYS5(SYS_mount, "/dev/null", target, 0, MS_BIND, 0);
    if (*masked_dir != 0) return FL_SYS5(SYS_mount, *masked_dir, target, 0, MS_BIND, 0);
    rc = FL_SYS5(SYS_mount, "tmpfs", target, "tmpfs", MS_RDONLY, "size=0k,mode=0555");
    if (rc == 0) *masked_dir = target;
    return rc;
}

/// Whether a step failed for want of its mount point (or a directory on the way to it): only
/// then are directories created. Trying first spares a mkdirat per path component, with the
/// parent's inode lock, for the many targets that exist (the standard /dev, /proc, /sys set).
static int fl_target_missing(long rc) { return rc == -ENOENT || rc == -ENOTDIR; }

/// fl_make_path, failing the child at the mkdir stage (naming the step) when it cannot.
static void fl_child_make_path(const struct fl_child_context *ctx, int index, const char *target, int final) {
    long rc = fl_make_path(target, final);
    if (rc < 0) fl_child_fail(ctx, FL_STAGE_MKDIR, rc, index);
}

/// Performs the mount list in order; paths resolve in the new root once pivot_root has run.
static void fl_child_mounts(const struct fl_child_context *ctx) {
    const struct fl_spawn_request *req = ctx->req;
    const char *masked_dir = 0;
    for (int i = 0; i < req->mount_count; i++) {
        const struct fl_mount *m = &req->mounts[i];
        long rc = 0;
        switch (m->kind) {
        case FL_MOUNT_FILESYSTEM:
            rc = FL_SYS5(SYS_mount, m->source, m->target, m->fstype, m->flags, m->data);
            if (fl_target_missing(rc)) {
                fl_child_make_path(ctx, i, m->target, 0);
                rc = FL_SYS5(SYS_mount, m->source, m->target, m->fstype, m->flags, m->data);
            }
            break;
        case FL_MOUNT_BIND:
            rc = FL_SYS5(SYS_move_mount, req->mount_fds[i], "", AT_FDCWD, m->target, MOVE_MOUNT_F_EMPTY_PATH);
            if (fl_target_missing(rc)) {
                fl_child_make_path(ctx, i, m->target, m->target_is_file ? 1 : 0);
                rc = FL_SYS5(SYS_move_mount, req->mount_fds[i], "", AT_FDCWD, m->target, MOVE_MOUNT_F_EMPTY_PATH);
            }
            if (rc == 0) {
                FL_SYS1(SYS_close, req->mount_fds[i]);
                req->mount_fds[i] = -1;
            }
            break;
        case FL_MOUNT_DEVICE:
            rc = FL_SYS4(SYS_mknodat, AT_FDCWD, m->target, S_IFCHR | m->mode, m->device);
            if (fl_target_missing(rc)) {
                fl_child_make_path(ctx, i, m->target, 2);
                rc = FL_SYS4(SYS_mknodat, AT_FDCWD, m->target, S_IFCHR | m->mode, m->device);
            }
            break;
        case FL_MOUNT_SYMLINK:
            rc = FL_SYS3(SYS_symlinkat, m->source, AT_FDCWD, m->target);
            if (fl_target_missing(rc)) {
                fl_child_make_path(ctx, i, m->target, 2);
                rc = FL_SYS3(SYS_symlinkat, m->source, AT_FDCWD, m->target);
            }
            if (rc == -EEXIST) rc = 0;
            break;
        case FL_MOUNT_READONLY:
            rc = fl_child_readonly(m->target);
            break;
        case FL_MOUNT_MASK:
            rc = fl_child_mask(m->target, &masked_dir);
            break;
        default:
            rc = -EINVAL;
        }
        if (rc < 0) fl_child_fail(ctx, FL_STAGE_MOUNT, rc, i);
    }
}

/// The private mount namespace, the rootfs behind pivot_root and the mount list. Follows runc's
/// pivotRoot: pivot_root(".", ".") stacks the old root on the new one; it stays reachable through
/// a descriptor (so /proc can be mounted while a fully visible proc exists, as user namespaces
/// require) and is detached once everything is mounted.
static void fl_child_filesystem(const struct fl_child_context *ctx) {
    const struct fl_spawn_request *req = ctx->req;
    if (!(req->clone_flags & CLONE_NEWNS)) return;
    long rc = FL_SYS5(SYS_mount, 0, "/", 0, MS_REC | MS_PRIVATE, 0);
    if (rc < 0) fl_child_fail(ctx, FL_STAGE_MOUNT_PRIVATE, rc, -1);
    if (req->rootfs == 0) {
        fl_child_open_binds(ctx);
        fl_child_mounts(ctx);
        return;
    }
    rc = FL_SYS5(SYS_mount, req->rootfs, req->rootfs, 0, MS_BIND | MS_REC, 0);
    if (rc < 0) fl_child_fail(ctx, FL_STAGE_ROOTFS_BIND, rc, -1);
    rc = FL_SYS1(SYS_chdir, req->rootfs);
    if (rc < 0) fl_child_fail(ctx, FL_STAGE_ROOTFS_CHDIR, rc, -1);
    fl_child_open_binds(ctx);
    long old_root = FL_SYS4(SYS_openat, AT_FDCWD, "/", O_DIRECTORY | O_PATH | O_CLOEXEC, 0);
    if (old_root < 0) fl_child_fail(ctx, FL_STAGE_OPEN_ROOT, old_root, -1);
    rc = FL_SYS2(SYS_pivot_root, ".", ".");
    if (rc < 0) fl_child_fail(ctx, FL_STAGE_PIVOT_ROOT, rc, -1);
    fl_child_mounts(ctx);
    rc = FL_SYS1(SYS_fchdir, old_root);
    if (rc == 0) rc = FL_SYS2(SYS_umount2, ".", MNT_DETACH);
    if (rc < 0) fl_child_fail(ctx, FL_STAGE_DETACH_OLD_ROOT, rc, -1);
    FL_SYS1(SYS_close, old_root);
    rc = FL_SYS1(SYS_chdir, "/");
    if (rc < 0) fl_child_fail(ctx, FL_STAGE_DETACH_OLD_ROOT, rc, -1);
    if (req->readonly_root) {
        struct mount_attr attr;
        attr.attr_set = MOUNT_ATTR_RDONLY;
        attr.attr_clr = 0;
        attr.propagation = 0;
        attr.userns_fd = 0;
        rc = FL_SYS5(SYS_mount_setattr, AT_FDCWD, "/", 0, &attr, sizeof attr);
        if (rc < 0) fl_child_fail(ctx, FL_STAGE_READONLY_ROOT, rc, -1);
    }
}

static void fl_child_load_seccomp(const struct fl_child_context *ctx) {
    const struct fl_spawn_request *req = ctx->req;
    if (req->seccomp_count <= 0) return;
    struct sock_fprog program;
    program.len = (unsigned short)req->seccomp_count;
    program.filter = (struct sock_filter *)req->seccomp_filter;
    long rc = FL_SYS3(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program);
    if (rc < 0) fl_child_fail(ctx, FL_STAGE_SECCOMP, rc, -1);
}

/// Bounding set, groups, gid, uid, then the other four capability sets (runc's finalizeNamespace
/// and capabilities.ApplyCaps). PR_SET_KEEPCAPS keeps the permitted set across the uid change so
/// capset can grant a non-root user what the manifest lists; ambient carries it across execve.
static void fl_child_identity(const struct fl_child_context *ctx) {
    const struct fl_spawn_request *req = ctx->req;
    for (int cap = 0; cap <= req->cap_last && cap < 64; cap++) {
        if (req->cap_bounding & (1ULL << cap)) continue;
        long rc = FL_SYS2(SYS_prctl, PR_CAPBSET_DROP, cap);
        if (rc < 0) fl_child_fail(ctx, FL_STAGE_CAPBSET, rc, cap);
    }
    long rc = FL_SYS2(SYS_prctl, PR_SET_KEEPCAPS, 1);
    if (rc < 0) fl_child_fail(ctx, FL_STAGE_KEEPCAPS, rc, -1);
    rc = FL_SYS2(SYS_setgroups, req->group_count, req->groups);
    if (rc < 0) fl_child_fail(ctx, FL_STAGE_SETGROUPS, rc, -1);
    rc = FL_SYS3(SYS_setresgid, req->gid, req->gid, req->gid);
    if (rc < 0) fl_child_fail(ctx, FL_STAGE_SETRESGID, rc, -1);
    rc = FL_SYS3(SYS_setresuid, req->uid, req->uid, req->uid);
    if (rc < 0) fl_child_fail(ctx, FL_STAGE_SETRESUID, rc, -1);
    struct __user_cap_header_struct header;
    header.version = _LINUX_CAPABILITY_VERSION_3;
    header.pid = 0;
    struct __user_cap_data_struct data[2];
    data[0].effective = (uint32_t)req->cap_effective;
    data[1].effective = (uint32_t)(req->cap_effective >> 32);
    data[0].permitted = (uint32_t)req->cap_permitted;
    data[1].permitted = (uint32_t)(req->cap_permitted >> 32);
    data[0].inheritable = (uint32_t)req->cap_inheritable;
    data[1].inheritable = (uint32_t)(req->cap_inheritable >> 32);
    rc = FL_SYS2(SYS_capset, &header, data);
    if (rc < 0) fl_child_fail(ctx, FL_STAGE_CAPSET, rc, -1);
    rc = FL_SYS5(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    if (rc < 0) fl_child_fail(ctx, FL_STAGE_AMBIENT, rc, -1);
    for (int cap = 0; cap <= req->cap_last && cap < 64; cap++) {
        if (!(req->cap_ambient & (1ULL << cap))) continue;
        rc = FL_SYS5(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
        if (rc < 0) fl_child_fail(ctx, FL_STAGE_AMBIENT, rc, cap);
    }
}

/// fd_from[i] → fd_to[i], in two passes so that a source numbered like another's target is not
/// overwritten first; then every other descriptor is marked close-on-exec (close_range keeps our
/// own status pipe usable until execve closes it). The status pipe itself moves out of the way
/// first: if the supervisor runs with 0, 1 or 2 closed, pipe2 may have handed out one of them.
static void fl_child_descriptors(struct fl_child_context *ctx) {
    const struct fl_spawn_request *req = ctx->req;
    int moved[64];
    int count = req->fd_count < 64 ? req->fd_count : 64;
    // Temporaries sit just above every target (RLIMIT_NOFILE is applied after this).
    int base = 3;
    for (int i = 0; i < count; i++) {
        if (req->fd_to[i] + 1 > base) base = req->fd_to[i] + 1;
    }
    long status = FL_SYS3(SYS_fcntl, ctx->status_fd, F_DUPFD_CLOEXEC, base);
    if (status < 0) fl_child_fail(ctx, FL_STAGE_FDS, status, -1);
    ctx->status_fd = (int)status;
    for (int i = 0; i < count; i++) {
        long fd = FL_SYS3(SYS_fcntl, req->fd_from[i], F_DUPFD_CLOEXEC, base);
        if (fd < 0) fl_child_fail(ctx, FL_STAGE_FDS, fd, req->fd_to[i]);
        moved[i] = (int)fd;
    }
    for (int i = 0; i < count; i++) {
        long rc = FL_SYS3(SYS_dup3, moved[i], req->fd_to[i], 0);
        if (rc < 0) fl_child_fail(ctx, FL_STAGE_FDS, rc, req->fd_to[i]);
    }
    for (int i = 0; i < count; i++) FL_SYS1(SYS_close, moved[i]);
    long rc = FL_SYS3(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
    if (rc < 0) fl_child_fail(ctx, FL_STAGE_FDS, rc, -1);
    // dup3 cleared close-on-exec on the targets; close_range set it on the ones above 2 again.
    for (int i = 0; i < count; i++) {
        if (req->fd_to[i] <= 2) continue;
        rc = FL_SYS3(SYS_fcntl, req->fd_to[i], F_SETFD, 0);
        if (rc < 0) fl_child_fail(ctx, FL_STAGE_FDS, rc, req->fd_to[i]);
    }
}

/// Exec checks (`join_flags`): joins the target's namespaces, then forks; returns in the grandchild,
/// which goes on to exec the command, while this process waits for it and exits with its status.
/// setns(2) with a pidfd enters all the namespaces at once; a pid namespace only applies to
/// children, hence the fork (as nsenter(1) does). Without CLONE_VM the grandchild has its own copy
/// of memory, so it may return into C. PR_SET_PDEATHSIG: killing this process kills the command
/// too, but only while the command runs as root: taking the service's user later clears it, and
/// the supervisor (ExecCheckRun) ends and reaps a command that outlived this process.
static void fl_child_join(struct fl_child_context *ctx) {
    const struct fl_spawn_request *req = ctx->req;
    long rc = FL_SYS2(SYS_setns, req->join_pidfd, req->join_flags);
    if (rc < 0) fl_child_fail(ctx, FL_STAGE_SETNS, rc, -1);
    long pid = FL_SYS5(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (pid < 0) fl_child_fail(ctx, FL_STAGE_JOIN_FORK, pid, -1);
    if (pid == 0) {
        FL_SYS2(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
        return;
    }
    // This process is a copy of the supervisor's, descriptors included (no CLONE_FILES), and it
    // never execs, so close-on-exec never closes them: it would hold every listener, pipe and
    // socket of the supervisor for as long as the command runs (a restart's bind failing on a
    // published port, a launch's status pipe kept open). It needs none of them to wait.
    FL_SYS1(SYS_close, ctx->status_fd);
    FL_SYS3(SYS_close_range, 0, ~0U, 0);
    int status = 0;
    do {
        rc = FL_SYS4(SYS_wait4, pid, &status, 0, 0);
    } while (rc == -EINTR);
    int code = rc < 0 ? 127 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    for (;;) FL_SYS1(SYS_exit, code);
}

/// A new network namespace starts with `lo` down: nothing, not even 127.0.0.1, is reachable.
/// Brought up as runc's libcontainer does for its loopback (network_linux.go, loopback.Create),
/// but with the two ioctls an interface's flags take instead of netlink: a datagram socket of the
/// new namespace addresses its interfaces by name. The kernel gives `lo` 127.0.0.1/8 and ::1 as
/// soon as it is up.
static void fl_child_loopback_up(const struct fl_child_context *ctx) {
    long fd = FL_SYS3(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fl_child_fail(ctx, FL_STAGE_LOOPBACK, fd, 0);
    struct ifreq request;
    for (size_t i = 0; i < sizeof request; i++) ((char *)&request)[i] = 0;
    request.ifr_name[0] = 'l';
    request.ifr_name[1] = 'o';
    long rc = FL_SYS3(SYS_ioctl, fd, SIOCGIFFLAGS, &request);
    if (rc < 0) fl_child_fail(ctx, FL_STAGE_LOOPBACK, rc, 1);
    request.ifr_flags |= IFF_UP;
    rc = FL_SYS3(SYS_ioctl, fd, SIOCSIFFLAGS, &request);
    if (rc < 0) fl_child_fail(ctx, FL_STAGE_LOOPBACK, rc, 2);
    FL_SYS1(SYS_close, fd);
}

/// The resource limits: all but RLIMIT_NOFILE (`open_files` 0), or only it (1).
static void fl_child_rlimits(const struct fl_child_context *ctx, int open_files) {
    const struct fl_spawn_request *req = ctx->req;
    for (int i = 0; i < req->rlimit_count; i++) {
        if ((req->rlimits[i].resource == RLIMIT_NOFILE) != open_files) continue;
        struct fl_rlimit64 {
            uint64_t cur, max;
        } limit = {req->rlimits[i].soft, req->rlimits[i].hard};
        long rc = FL_SYS4(SYS_prlimit64, 0, req->rlimits[i].resource, &limit, 0);
        if (rc < 0) fl_child_fail(ctx, FL_STAGE_RLIMIT, rc, i);
    }
}

static int fl_child_main(void *arg) {
    // A copy on the child's own stack: with CLONE_VM the original is the parent's memory.
    struct fl_child_context context = *(const struct fl_child_context *)arg;
    struct fl_child_context *ctx = &context;
    const struct fl_spawn_request *req = ctx->req;
    long rc;

    if (req->clone_flags & CLONE_NEWUSER) fl_child_wait_release(ctx);
    // An exec check forks the command right away: it must be in the cgroup before that.
    if (req->join_flags) {
        fl_child_wait_release(ctx);
        fl_child_join(ctx);
    }
    // In a new user namespace our ids are still the parent's, unmapped there: files we create
    // (mount points, /dev entries) would fail with EOVERFLOW. Become the namespace's root, as
    // runc's nsexec does; capabilities in the namespace are kept across this change.
    if (req->clone_flags & CLONE_NEWUSER) {
        rc = FL_SYS3(SYS_setresgid, 0, 0, 0);
        if (rc == 0) rc = FL_SYS3(SYS_setresuid, 0, 0, 0);
        if (rc < 0) fl_child_fail(ctx, FL_STAGE_USERNS_ROOT, rc, -1);
    }
    // Still with every capability (in a new user namespace, those of its root, which owns the
    // new net namespace too): CAP_NET_ADMIN is what SIOCSIFFLAGS needs.
    if (req->clone_flags & CLONE_NEWNET) fl_child_loopback_up(ctx);
    // Handlers belong to the parent's code; ignored signals would leak into the service.
    // All signals stay blocked (the parent blocked them around clone3) until just before execve.
    struct fl_kernel_sigaction dfl = {0, 0, 0, 0};
    for (int sig = 1; sig < 65; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        rc = FL_SYS4(SYS_rt_sigaction, sig, &dfl, 0, 8);
        if (rc < 0 && rc != -EINVAL) fl_child_fail(ctx, FL_STAGE_SIGNALS, rc, sig);
    }
    FL_SYS1(SYS_umask, 0);
    fl_child_filesystem(ctx);
    FL_SYS1(SYS_umask, 022);
    // Up to here the parent made our v1 cgroups meanwhile (fl_spawn_start); nothing of the
    // service has run, and from here on everything is accounted and limited there.
    if (!req->join_flags) fl_child_wait_release(ctx);
    // A cgroup namespace rooted at the service's own cgroup: unshared only now that we are in it.
    if (req->unshare_cgroup_ns) {
        rc = FL_SYS1(SYS_unshare, CLONE_NEWCGROUP);
        if (rc < 0) fl_child_fail(ctx, FL_STAGE_CGROUP_NS, rc, -1);
    }
    if (req->hostname) {
        rc = FL_SYS2(SYS_sethostname, req->hostname, fl_strlen(req->hostname));
        if (rc < 0) fl_child_fail(ctx, FL_STAGE_HOSTNAME, rc, -1);
    }
    // RLIMIT_NOFILE waits until the descriptors are in place: the shuffle needs free slots
    // above 2, and a supervisor holding thousands of descriptors (pidfds, pipes, sockets of
    // every instance) has none below a service's limit of, say, 1024.
    fl_child_rlimits(ctx, 0);
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while we still have it.
    if (!req->no_new_privs) fl_child_load_seccomp(ctx);
    fl_child_identity(ctx);
    if (req->no_new_privs) {
        rc = FL_SYS5(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        if (rc < 0) fl_child_fail(ctx, FL_STAGE_NO_NEW_PRIVS, rc, -1);
    }
    if (req->cwd) {
        rc = FL_SYS1(SYS_chdir, req->cwd);
        if (rc < 0) fl_child_fail(ctx, FL_STAGE_CHDIR, rc, -1);
    }
    fl_child_descriptors(ctx);
    fl_child_rlimits(ctx, 1);
    if (req->no_new_privs) fl_child_load_seccomp(ctx);
    uint64_t empty = 0;
    FL_SYS4(SYS_rt_sigprocmask, SIG_SETMASK, &empty, 0, 8);

    // Like execvp: try each candidate; remember a permission error over a missing file.
    long reported = -ENOENT;
    int reported_index = req->exec_path_count > 0 ? req->exec_path_count - 1 : -1;
    int saw_eacces = 0;
    for (int i = 0; i < req->exec_path_count; i++) {
        rc = FL_SYS3(SYS_execve, req->exec_paths[i], req->argv, req->envp);
        if (rc == -EACCES && !saw_eacces) {
            saw_eacces = 1;
            reported = rc;
            reported_index = i;
            continue;
        }
        if (rc == -ENOENT || rc == -ENOTDIR || rc == -ESTALE || rc == -ENODEV || rc == -ETIMEDOUT) {
            if (!saw_eacces) {
                reported = rc;
                reported_index = i;
            }
            continue;
        }
        fl_child_fail(ctx, FL_STAGE_EXECVE, rc, i);
    }
    fl_child_fail(ctx, FL_STAGE_EXECVE, reported, reported_index);
}

// MARK: - Parent side: ordinary C.

static int fl_fail(struct fl_spawn_result *out, int stage, int error) {
    out->failure.stage = stage;
    out->failure.error = error;
    out->failure.index = -1;
    return -1;
}

static void fl_close(int *fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

static int fl_write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    size_t length = strlen(text);
    ssize_t n = write(fd, text, length);
    int error = n < 0 ? errno : (size_t)n != length ? EIO : 0;
    close(fd);
    return error;
}

static void fl_reap(int pidfd) {
    siginfo_t info;
    while (syscall(SYS_waitid, P_PIDFD, pidfd, &info, WEXITED, NULL) < 0 && errno == EINTR) {
    }
}

static void fl_kill_and_reap(int pidfd) {
    syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    fl_reap(pidfd);
}

static int64_t fl_now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/// Waits for the status pipe: end of file means execve succeeded (the pipe was close-on-exec);
/// a fl_spawn_failure means the child gave up. Returns 0, 1 (failure read) or -errno.
static int fl_read_status(int fd, int timeout_ms, struct fl_spawn_failure *failure) {
    int64_t deadline = timeout_ms > 0 ? fl_now_ms() + timeout_ms : 0;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int wait_ms = -1;
        if (timeout_ms > 0) {
            int64_t left = deadline - fl_now_ms();
            if (left <= 0) return -ETIMEDOUT;
            wait_ms = (int)left;
        }
        int ready = poll(&p, 1, wait_ms);
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) return -errno;
        if (ready == 0) return -ETIMEDOUT;
        ssize_t n = read(fd, failure, sizeof *failure);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        if (n == 0) return 0;
        if ((size_t)n == sizeof *failure) return 1;
        return -EIO;
    }
}

struct fl_spawn_pending {
    /// The child copies this onto its own stack when it starts; it lives here until then.
    struct fl_child_context ctx;
    const struct fl_spawn_request *req;
    int status_fd;  ///< read end of the status pipe
    int release_fd; ///< the parent's end of the release socket
    int pidfd;
    pid_t pid;
    void *stack;    ///< the child's stack when it shares our memory, else NULL
};

static void fl_pending_free(struct fl_spawn_pending *p) {
    fl_close(&p->status_fd);
    fl_close(&p->release_fd);
    // Safe to reuse: the child has either replaced its address space (execve) or been reaped.
    if (p->stack) fl_stack_give_back(p->stack);
    free(p);
}

/// One byte to the child, with `fds` attached (SCM_RIGHTS) when `count` > 0. MSG_NOSIGNAL: a
/// child that already gave up must not SIGPIPE us.
static int fl_release(struct fl_spawn_pending *p, const int32_t *fds, int count) {
    char byte = '1';
    struct iovec data = {&byte, 1};
    union fl_cgroup_fds_control control;
    struct msghdr message;
    memset(&message, 0, sizeof message);
    memset(&control, 0, sizeof control);
    message.msg_iov = &data;
    message.msg_iovlen = 1;
    if (count > 0) {
        if (count > FL_MAX_CGROUP_FDS) return E2BIG;
        message.msg_control = control.bytes;
        message.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)count);
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)count);
        memcpy(CMSG_DATA(header), fds, sizeof(int) * (size_t)count);
    }
    for (;;) {
        ssize_t n = sendmsg(p->release_fd, &message, MSG_NOSIGNAL);
        if (n == 1) return 0;
        if (n < 0 && errno == EINTR) continue;
        return n < 0 ? errno : EIO;
    }
}

/// A parent stage failed while the child may have failed on its own already (and said why on the
/// status pipe): kill it and report its failure if it wrote one, else `stage`.
static int fl_fail_and_reap(struct fl_spawn_pending *p, struct fl_spawn_result *out, int stage, int error,
                            int index) {
    syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0);
    struct fl_spawn_failure failure;
    int status = fl_read_status(p->status_fd, 0, &failure);
    fl_reap(p->pidfd);
    if (status == 1) {
        out->failure = failure;
    } else {
        fl_fail(out, stage, error);
        out->failure.index = index;
    }
    return -1;
}

struct fl_spawn_pending *fl_spawn_start(const struct fl_spawn_request *req, struct fl_spawn_result *out) {
    memset(out, 0, sizeof *out);
    out->pid = -1;
    out->pidfd = -1;
    out->failure.index = -1;

    struct fl_spawn_pending *p = calloc(1, sizeof *p);
    if (p == NULL) {
        fl_fail(out, FL_STAGE_PIPE, ENOMEM);
        return NULL;
    }
    p->req = req;
    p->status_fd = -1;
    p->release_fd = -1;
    p->pidfd = -1;
    int status_pipe[2] = {-1, -1};
    int release[2] = {-1, -1};
    if (pipe2(status_pipe, O_CLOEXEC) < 0) {
        fl_fail(out, FL_STAGE_PIPE, errno);
        free(p);
        return NULL;
    }
    p->status_fd = status_pipe[0];
    // Datagrams in order: the id maps' release and the cgroups' message stay apart.
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, release) < 0) {
        fl_fail(out, FL_STAGE_PIPE, errno);
        fl_close(&status_pipe[1]);
        fl_pending_free(p);
        return NULL;
    }
    p->release_fd = release[0];

    // An exec check's child outlives fl_spawn_finish (it waits for the command), so it cannot run
    // on a stack that is reused afterwards: it gets its own copy of memory instead.
    int shares_vm = FL_HAVE_CLONE3_VM && !(req->options & FL_SPAWN_NO_SHARED_VM) && !req->join_flags;
    if (shares_vm) {
        p->stack = fl_stack_take();
        if (p->stack == NULL) {
            fl_fail(out, FL_STAGE_STACK, errno);
            fl_close(&status_pipe[1]);
            fl_close(&release[1]);
            fl_pending_free(p);
            return NULL;
        }
    }

    p->ctx.req = req;
    p->ctx.status_fd = status_pipe[1];
    p->ctx.release_fd = release[1];
    struct fl_clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = req->clone_flags | CLONE_PIDFD | (shares_vm ? CLONE_VM : 0);
    if (req->cgroup_fd >= 0) {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)req->cgroup_fd;
    }
    args.pidfd = (uint64_t)(uintptr_t)&p->pidfd;
    args.exit_signal = SIGCHLD;
    if (shares_vm) {
        args.stack = (uint64_t)(uintptr_t)p->stack;
        args.stack_size = FL_STACK_BYTES;
    }

    // Every signal blocked across clone3: a handler of the parent must never run in the child.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    long pid;
#if FL_HAVE_CLONE3_VM
    if (shares_vm)
        pid = fl_clone3_vm(&args, sizeof args, fl_child_main, &p->ctx);
    else
#endif
    {
        pid = syscall(SYS_clone3, &args, sizeof args);
        if (pid == 0) fl_child_main(&p->ctx);
        if (pid < 0) pid = -errno;
    }
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    fl_close(&status_pipe[1]);
    fl_close(&release[1]);
    if (pid < 0) {
        fl_fail(out, FL_STAGE_CLONE3, (int)-pid);
        fl_pending_free(p);
        return NULL;
    }
    p->pid = (pid_t)pid;

    if (req->clone_flags & CLONE_NEWUSER) {
        char path[64];
        int error;
        int stage = 0;
        snprintf(path, sizeof path, "/proc/%ld/gid_map", pid);
        if (req->gid_map && (error = fl_write_file(path, req->gid_map)) != 0) stage = FL_STAGE_GID_MAP;
        if (stage == 0) {
            snprintf(path, sizeof path, "/proc/%ld/uid_map", pid);
            if (req->uid_map && (error = fl_write_file(path, req->uid_map)) != 0) stage = FL_STAGE_UID_MAP;
        }
        if (stage == 0 && (error = fl_release(p, NULL, 0)) != 0) stage = FL_STAGE_RELEASE;
        if (stage != 0) {
            fl_fail_and_reap(p, out, stage, error, stage == FL_STAGE_RELEASE ? -1 : (int)pid);
            close(p->pidfd);
            fl_pending_free(p);
            return NULL;
        }
    }
    return p;
}

int fl_spawn_finish(struct fl_spawn_pending *p, const int32_t *tasks_fds, int32_t tasks_count,
                    struct fl_spawn_result *out) {
    memset(out, 0, sizeof *out);
    out->pid = -1;
    out->pidfd = -1;
    out->failure.index = -1;
    int result = 0;
    int error = fl_release(p, tasks_fds, tasks_count);
    if (error != 0) {
        result = fl_fail_and_reap(p, out, FL_STAGE_RELEASE, error, -1);
        goto done;
    }
    struct fl_spawn_failure failure;
    int status = fl_read_status(p->status_fd, p->req->timeout_ms, &failure);
    if (status == 1) {
        fl_reap(p->pidfd);
        out->failure = failure;
        result = -1;
    } else if (status < 0) {
        fl_kill_and_reap(p->pidfd);
        result = fl_fail(out, FL_STAGE_STATUS_READ, -status);
    }

done:
    if (result == 0) {
        out->pid = (int32_t)p->pid;
        out->pidfd = p->pidfd;
    } else if (p->pidfd >= 0) {
        close(p->pidfd);
    }
    fl_pending_free(p);
    return result;
}

int fl_spawn_pending_pid(const struct fl_spawn_pending *p) { return (int)p->pid; }
int fl_spawn_pending_pidfd(const struct fl_spawn_pending *p) { return p->pidfd; }

void fl_spawn_abort(struct fl_spawn_pending *p) {
    fl_kill_and_reap(p->pidfd);
    close(p->pidfd);
    fl_pending_free(p);
}

// MARK: - Raw wrappers for Swift.

int fl_pidfd_send_signal(int pidfd, int sig) { return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0); }

int fl_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

int fl_waitid_pidfd(int pidfd, siginfo_t *info, int options) {
    return (int)syscall(SYS_waitid, P_PIDFD, pidfd, info, options, NULL);
}

void fl_siginfo_exit(const siginfo_t *info, int32_t *code, int32_t *status, int32_t *pid) {
    *code = info->si_code;
    *status = info->si_status;
    *pid = info->si_pid;
}

int fl_open_in_root(int dirfd, const char *path, int flags) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)(flags | O_CLOEXEC);
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

int fl_memfd(const char *name) { return memfd_create(name, MFD_CLOEXEC); }

int fl_pipe_read_nonblocking(int fds[2]) {
    if (pipe2(fds, O_CLOEXEC) < 0) return -1;
    int flags = fcntl(fds[0], F_GETFL);
    if (flags < 0 || fcntl(fds[0], F_SETFL, flags | O_NONBLOCK) < 0) {
        int saved = errno;
        close(fds[0]);
        close(fds[1]);
        errno = saved;
        return -1;
    }
    return 0;
}

int fl_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int fl_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

int fl_open_directory_path(const char *path) { return open(path, O_PATH | O_DIRECTORY | O_CLOEXEC); }

int fl_epoll_add(int epfd, int fd, uint64_t token) {
    struct epoll_event event;
    memset(&event, 0, sizeof event);
    event.events = EPOLLIN;
    event.data.u64 = token;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event);
}

int fl_epoll_del(int epfd, int fd) { return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL); }

int fl_epoll_wait(int epfd, uint64_t *tokens, int max_events, int timeout_ms) {
    struct epoll_event events[64];
    if (max_events > 64) max_events = 64;
    int n = epoll_wait(epfd, events, max_events, timeout_ms);
    for (int i = 0; i < n; i++) tokens[i] = events[i].data.u64;
    return n;
}

int fl_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }
