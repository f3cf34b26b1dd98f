// libseccomp, used by the supervisor (the parent) to compile seccomp filters to BPF.
// The child never calls libseccomp: it loads the compiled program with the raw seccomp syscall.
#include <seccomp.h>
