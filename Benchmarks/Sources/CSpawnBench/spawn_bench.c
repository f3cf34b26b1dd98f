#define _GNU_SOURCE
#include "spawn_bench.h"

#include <errno.h>
#include <malloc.h>
#include <sched.h>
#include <sys/mount.h>

int spawn_bench_hide_unified_cgroup(const char *unified) {
    if (unshare(CLONE_NEWNS) != 0) return -errno;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return -errno;
    if (umount2(unified, MNT_DETACH) != 0) return -errno;
    return 0;
}

long long spawn_bench_heap_in_use_bytes(void) {
    struct mallinfo2 info = mallinfo2();
    return (long long)(info.uordblks + info.hblkhd);
}
