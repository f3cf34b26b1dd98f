// The few libc calls Images needs that Swift's Glibc import leaves out.
#ifndef FL_IMAGES_H
#define FL_IMAGES_H

#include <stddef.h>
// fsetxattr and lgetxattr: <sys/xattr.h> is not part of Swift's Glibc module. Images sets
// trusted.overlay.opaque on opaque directories; the tests read it back.
#include <sys/xattr.h>

/// syncfs(fd): flushes the whole filesystem `fd` is on. Why a wrapper: syncfs needs
/// _GNU_SOURCE, which Swift's Glibc import does not define. An unpacked layer is thousands of
/// files on one filesystem; one syncfs flushes them all before the layer is renamed into place.
int fl_images_syncfs(int fd);

/// Mounts an overlay at `target` through the mount API of Linux 5.2 (fsopen, fsconfig,
/// fsmount, move_mount), giving each lower directory (top-most first) as a `lowerdir+`
/// parameter of its own, which overlayfs takes from Linux 6.8 on: mount(2) copies all options
/// into one 4,096-byte page, which holds about 38 layers' paths. `upper` and `work` NULL: a
/// read-only overlay. Returns 0, or -errno with `*failed_call` naming the call,
/// `*failed_lower` the index of the lower directory it was given (`lower_count` for another
/// call), and `message` the kernel's explanation when it gave one.
int fl_images_mount_overlay(const char *target, const char *const *lowers, size_t lower_count,
                            const char *upper, const char *work, int read_only,
                            const char **failed_call, size_t *failed_lower,
                            char *message, size_t message_capacity);

#endif
