#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <linux/mount.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fl_images.h"

int fl_images_syncfs(int fd) {
    return syncfs(fd);
}

/// The kernel's explanation of a failure on a filesystem context, into `message` (empty when it
/// gave none): the last error line ("e overlay: ...") of what it queued, which may also hold
/// warnings and lines of earlier calls.
static void read_context_message(int context, char *message, size_t capacity) {
    if (capacity == 0) return;
    message[0] = '\0';
    char line[1024];
    for (int lines = 0; lines < 32; lines++) {
        ssize_t count = read(context, line, sizeof line - 1);
        if (count <= 0) break;
        line[count] = '\0';
        if (line[0] == 'e' && line[1] == ' ') {
            snprintf(message, capacity, "%s", line + 2);
        }
    }
}

// Raw system calls rather than glibc's wrappers, which came in glibc 2.36.
static int sys_fsopen(const char *name, unsigned flags) {
    return (int)syscall(SYS_fsopen, name, flags);
}

static int sys_fsconfig(int context, unsigned command, const char *key, const void *value, int aux) {
    return (int)syscall(SYS_fsconfig, context, command, key, value, aux);
}

static int sys_fsmount(int context, unsigned flags, unsigned attributes) {
    return (int)syscall(SYS_fsmount, context, flags, attributes);
}

static int sys_move_mount(int from, const char *from_path, int to, const char *to_path, unsigned flags) {
    return (int)syscall(SYS_move_mount, from, from_path, to, to_path, flags);
}

int fl_images_mount_overlay(const char *target, const char *const *lowers, size_t lower_count,
                            const char *upper, const char *work, int read_only,
                            const char **failed_call, size_t *failed_lower,
                            char *message, size_t message_capacity) {
    if (message_capacity > 0) message[0] = '\0';
    *failed_lower = lower_count;
    int context = sys_fsopen("overlay", FSOPEN_CLOEXEC);
    if (context < 0) {
        *failed_call = "fsopen overlay";
        return -errno;
    }
    int status = 0;
    for (size_t index = 0; index < lower_count && status == 0; index++) {
        if (sys_fsconfig(context, FSCONFIG_SET_STRING, "lowerdir+", lowers[index], 0) != 0) {
            status = -errno;
            *failed_call = "fsconfig lowerdir+";
            *failed_lower = index;
        }
    }
    if (status == 0 && upper != NULL && sys_fsconfig(context, FSCONFIG_SET_STRING, "upperdir", upper, 0) != 0) {
        status = -errno;
        *failed_call = "fsconfig upperdir";
    }
    if (status == 0 && work != NULL && sys_fsconfig(context, FSCONFIG_SET_STRING, "workdir", work, 0) != 0) {
        status = -errno;
        *failed_call = "fsconfig workdir";
    }
    if (status == 0 && sys_fsconfig(context, FSCONFIG_CMD_CREATE, NULL, NULL, 0) != 0) {
        status = -errno;
        *failed_call = "fsconfig create overlay";
    }
    if (status != 0) {
        read_context_message(context, message, message_capacity);
        close(context);
        return status;
    }
    int mounted = sys_fsmount(context, FSMOUNT_CLOEXEC, read_only ? MOUNT_ATTR_RDONLY : 0);
    if (mounted < 0) {
        status = -errno;
        *failed_call = "fsmount overlay";
        read_context_message(context, message, message_capacity);
        close(context);
        return status;
    }
    close(context);
    if (sys_move_mount(mounted, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) != 0) {
        status = -errno;
        *failed_call = "move_mount";
    }
    close(mounted);
    return status;
}
