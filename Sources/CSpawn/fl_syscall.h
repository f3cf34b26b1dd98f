// fl_syscall.h — raw system calls for the child between clone3 and execve.
//
// Why not libc's syscall(): it stores errno in thread-local storage. A CLONE_VM child shares the
// parent thread's TLS, so every failed call would overwrite errno under the parent's feet. These
// return -errno instead and touch no memory. Where no inline version exists the child never
// shares the address space (fl_spawn clones without CLONE_VM there), so libc's syscall() is safe.
#ifndef FL_SYSCALL_H
#define FL_SYSCALL_H

#include <errno.h>
#include <unistd.h>
#include <sys/syscall.h>

#if defined(__x86_64__)
#define FL_HAVE_RAW_SYSCALL 1
static inline long fl_sys6(long n, long a, long b, long c, long d, long e, long f) {
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}
#else
#define FL_HAVE_RAW_SYSCALL 0
static inline long fl_sys6(long n, long a, long b, long c, long d, long e, long f) {
    long r = syscall(n, a, b, c, d, e, f);
    return r == -1 ? -errno : r;
}
#endif

#define FL_SYS0(n) fl_sys6((n), 0, 0, 0, 0, 0, 0)
#define FL_SYS1(n, a) fl_sys6((n), (long)(a), 0, 0, 0, 0, 0)
#define FL_SYS2(n, a, b) fl_sys6((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define FL_SYS3(n, a, b, c) fl_sys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define FL_SYS4(n, a, b, c, d) fl_sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define FL_SYS5(n, a, b, c, d, e) fl_sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

#endif
