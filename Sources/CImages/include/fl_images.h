// The few libc calls Images needs that Swift's Glibc import leaves out.
#ifndef FL_IMAGES_H
#define FL_IMAGES_H

// fsetxattr and lgetxattr: <sys/xattr.h> is not part of Swift's Glibc module. Images sets
// trusted.overlay.opaque on opaque directories; the tests read it back.
#include <sys/xattr.h>

/// syncfs(fd): flushes the whole filesystem `fd` is on. Why a wrapper: syncfs needs
/// _GNU_SOURCE, which Swift's Glibc import does not define. An unpacked layer is thousands of
/// files on one filesystem; one syncfs flushes them all before the layer is renamed into place.
int fl_images_syncfs(int fd);

#endif
