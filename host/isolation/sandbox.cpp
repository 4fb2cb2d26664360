#include "isolation/sandbox.hpp"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>
#include <seccomp.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace mcph::isolation {

Status enter_strict_sandbox() {
  std::unique_ptr<void, void (*)(scmp_filter_ctx)> ctx(seccomp_init(SCMP_ACT_ALLOW), seccomp_release);
  if (!ctx) return Error{"seccomp_init failed"};
  // Every thread of the process, not only the caller (the plugin's own threads too).
  if (int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_TSYNC, 1); rc != 0) {
    return Error{std::string("seccomp thread sync: ") + std::strerror(-rc)};
  }
  const uint32_t deny = SCMP_ACT_ERRNO(EPERM);
  // Files: opening (any mode: a read can leak as much as a write), creating, changing.
  // Sockets: no new ones (the socketpair to the host exists already). Programs and
  // processes: none. Others' memory: none.
  static const char* const kDenied[] = {
      "open", "openat", "openat2", "creat", "open_by_handle_at", "name_to_handle_at",
      "truncate", "ftruncate", "unlink", "unlinkat", "rename", "renameat", "renameat2",
      "mkdir", "mkdirat", "rmdir", "link", "linkat", "symlink", "symlinkat", "mknod", "mknodat",
      "chmod", "fchmod", "fchmodat", "chown", "fchown", "lchown", "fchownat", "utime", "utimes", "utimensat",
      "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4",
      "execve", "execveat", "fork", "vfork",
      "ptrace", "process_vm_readv", "process_vm_writev", "tkill",
      "mount", "umount2", "pivot_root", "chroot", "setns", "unshare", "bpf", "perf_event_open", "keyctl",
      "add_key", "request_key", "init_module", "finit_module", "delete_module", "kexec_load", "reboot",
      "swapon", "swapoff", "quotactl", "acct", "userfaultfd", "io_uring_setup",
  };
  for (const char* name : kDenied) {
    const int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    if (int rc = seccomp_rule_add(ctx.get(), deny, nr, 0); rc != 0) {
      return Error{std::string("seccomp_rule_add(") + name + "): " + std::strerror(-rc)};
    }
  }
  // Signals to itself only (raise and abort use them). (The second datum, unused by
  // SCMP_CMP_NE, is given: clang warns when a macro leaves a field out.)
  const auto self = static_cast<scmp_datum_t>(getpid());
  for (int nr : {SCMP_SYS(kill), SCMP_SYS(tgkill)}) {
    if (int rc = seccomp_rule_add(ctx.get(), deny, nr, 1, SCMP_A0(SCMP_CMP_NE, self, 0)); rc != 0) {
      return Error{std::string("seccomp_rule_add(kill): ") + std::strerror(-rc)};
    }
  }
  // clone: threads (CLONE_THREAD) only. clone3 passes its flags in memory a filter cannot
  // read, so it reports ENOSYS and the C library falls back to clone.
  if (int rc = seccomp_rule_add(ctx.get(), deny, SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0)); rc != 0) {
    return Error{std::string("seccomp_rule_add(clone): ") + std::strerror(-rc)};
  }
  if (int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0); rc != 0) {
    return Error{std::string("seccomp_rule_add(clone3): ") + std::strerror(-rc)};
  }
  if (int rc = seccomp_load(ctx.get()); rc != 0) return Error{std::string("seccomp_load: ") + std::strerror(-rc)};
  return Ok{};
}

}  // namespace mcph::isolation
