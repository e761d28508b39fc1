/* Tries one system call and prints "<name> <errno>" (0 on success), so a test can see
 * exactly what seccomp and the capability sets allow inside a container. Built static at
 * test time: the busybox rootfs has no libc. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static long clone_flags(unsigned long flags)
{
    long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    return pid;
}

static long clone3_plain(void)
{
    struct clone_args args;
    memset(&args, 0, sizeof(args));
    args.exit_signal = SIGCHLD;
    long pid = syscall(SYS_clone3, &args, sizeof(args));
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    return pid;
}

static long try(const char *name)
{
    if (!strcmp(name, "clone3"))
        return clone3_plain();
    if (!strcmp(name, "clone"))
        return clone_flags(0);
    if (!strcmp(name, "clone_newns"))
        return clone_flags(CLONE_NEWNS);
    if (!strcmp(name, "clone_newuser"))
        return clone_flags(CLONE_NEWUSER);
    if (!strcmp(name, "unshare_user"))
        return syscall(SYS_unshare, CLONE_NEWUSER);
    if (!strcmp(name, "setns"))
        return syscall(SYS_setns, -1, 0);
    if (!strcmp(name, "keyctl"))   /* KEYCTL_GET_KEYRING_ID of the session keyring */
        return syscall(SYS_keyctl, 0, -3, 0);
    if (!strcmp(name, "add_key"))
        return syscall(SYS_add_key, "user", "hutch", "x", 1, -3);
    if (!strcmp(name, "bpf"))
        return syscall(SYS_bpf, 0, NULL, 0);
    if (!strcmp(name, "io_uring_setup"))
        return syscall(SYS_io_uring_setup, 1, NULL);
    if (!strcmp(name, "open_by_handle_at"))
        return syscall(SYS_open_by_handle_at, AT_FDCWD, NULL, 0);
    if (!strcmp(name, "socket_alg"))
        return socket(38, SOCK_SEQPACKET, 0);
    if (!strcmp(name, "socket_vsock"))
        return socket(40, SOCK_STREAM, 0);
    if (!strcmp(name, "socket_inet"))
        return socket(AF_INET, SOCK_STREAM, 0);
    if (!strcmp(name, "personality_linux"))
        return personality(PER_LINUX);
    if (!strcmp(name, "personality_odd"))
        return personality(0x0400000);
    if (!strcmp(name, "mount"))
        return syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, NULL);
    if (!strcmp(name, "reboot"))   /* bad magic: EINVAL if seccomp lets it through */
        return syscall(SYS_reboot, 0, 0, 0, NULL);
    if (!strcmp(name, "kexec_load"))
        return syscall(SYS_kexec_load, 0, 0, NULL, 0);
    if (!strcmp(name, "init_module"))
        return syscall(SYS_init_module, NULL, 0, "");
    if (!strcmp(name, "userfaultfd"))
        return syscall(SYS_userfaultfd, 0);
    if (!strcmp(name, "perf_event_open"))
        return syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0);
    if (!strcmp(name, "ptrace"))   /* PTRACE_TRACEME */
        return syscall(SYS_ptrace, 0, 0, 0, 0);
    if (!strcmp(name, "getpid"))
        return syscall(SYS_getpid);
    errno = ENOENT;
    return -2;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        errno = 0;
        long r = try(argv[i]);
        if (r == -2 && errno == ENOENT) {
            printf("%s unknown\n", argv[i]);
            continue;
        }
        printf("%s %d\n", argv[i], r < 0 ? errno : 0);
    }
    return 0;
}
