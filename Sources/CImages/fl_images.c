#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "fl_images.h"

int fl_images_syncfs(int fd) {
    return syncfs(fd);
}

/// The kernel's explanation of the last failure on a filesystem context ("e overlay: ..."),
/// if it kept one, into `message` (empty otherwise).
static void read_context_message(int context, char *message, size_t capacity) {
    if (capacity == 0) return;
    message[0] = '\0';
    ssize_t count = read(context, message, capacity - 1);
    message[count > 0 ? count : 0] = '\0';
}

int fl_images_mount_overlay(const char *target, const char *const *lowers, size_t lower_count,
                            const char *upper, const char *work, int read_only,
                            const char **failed_call, char *message, size_t message_capacity) {
    if (message_capacity > 0) message[0] = '\0';
    int context = fsopen("overlay", FSOPEN_CLOEXEC);
    if (context < 0) {
        *failed_call = "fsopen overlay";
        return -errno;
    }
    int status = 0;
    for (size_t index = 0; index < lower_count && status == 0; index++) {
        if (fsconfig(context, FSCONFIG_SET_STRING, "lowerdir+", lowers[index], 0) != 0) {
            status = -errno;
            *failed_call = "fsconfig lowerdir+";
        }
    }
    if (status == 0 && upper != NULL && fsconfig(context, FSCONFIG_SET_STRING, "upperdir", upper, 0) != 0) {
        status = -errno;
        *failed_call = "fsconfig upperdir";
    }
    if (status == 0 && work != NULL && fsconfig(context, FSCONFIG_SET_STRING, "workdir", work, 0) != 0) {
        status = -errno;
        *failed_call = "fsconfig workdir";
    }
    if (status == 0 && fsconfig(context, FSCONFIG_CMD_CREATE, NULL, NULL, 0) != 0) {
        status = -errno;
        *failed_call = "fsconfig create overlay";
    }
    if (status != 0) {
        read_context_message(context, message, message_capacity);
        close(context);
        return status;
    }
    int mounted = fsmount(context, FSMOUNT_CLOEXEC, read_only ? MOUNT_ATTR_RDONLY : 0);
    if (mounted < 0) {
        status = -errno;
        *failed_call = "fsmount overlay";
        read_context_message(context, message, message_capacity);
        close(context);
        return status;
    }
    close(context);
    if (move_mount(mounted, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) != 0) {
        status = -errno;
        *failed_call = "move_mount";
    }
    close(mounted);
    return status;
}
