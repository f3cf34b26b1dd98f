// spawn_bench.h — what spawn-bench needs below Swift's Glibc import.
#ifndef SPAWN_BENCH_H
#define SPAWN_BENCH_H

/// Moves the calling thread into a private mount namespace without the cgroup2 mount at
/// `unified`, so that processes it spawns see cgroup v1 only. Why: crun 1.8 refuses this host's
/// hybrid cgroups, and a thread (unlike a multithreaded process) may unshare its mount namespace.
/// Returns 0 or -errno.
int spawn_bench_hide_unified_cgroup(const char *unified);

/// Bytes the process's malloc has handed out and not had back, over every arena (mallinfo2's
/// uordblks + hblkhd). Why here: Swift's Glibc module does not export <malloc.h>.
long long spawn_bench_heap_in_use_bytes(void);

#endif
