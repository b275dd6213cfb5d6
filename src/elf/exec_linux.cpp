// SPDX-License-Identifier: BSD-2-Clause
// exec_member: a user-space exec of a program stored in an archive.
//
// Steps, as the kernel's binfmt_elf does them: map the program (and its
// PT_INTERP interpreter) with map_object; build the initial stack (argc,
// argv, envp, the auxiliary vector, the strings, 16 random bytes); apply
// exec's process-state rules we can (close-on-exec fds closed, caught
// signals reset to default, this thread's rseq area unregistered so the new
// libc can register its own); then load the stack pointer and jump to the
// interpreter's entry (or the program's, if static) with the registers the
// ABI expects (rdx = 0: no rtld_fini).
//
// The new stack is built on the current thread's own stack, far below the
// live frames, so the program's main thread still runs on the `[stack]`
// mapping (pthread_getattr_np and stack growth work as after a real exec).
//
// What a user-space exec cannot change: /proc/self/exe and the process's
// command line still name mmar, and the old process's mappings stay (unused)
// in the address space.
#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "mmar/elf_map.h"
#include "support/fd.h"

extern char** environ;

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
extern "C" {
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));
}
#define MMAR_HAVE_RSEQ_ABI 1
#endif

namespace mmar {

namespace {

// fexecve from an anonymous memory file: the kernel does the exec.
Error exec_via_memfd(const Archive& archive, const Member& member, const std::vector<std::string>& argv) {
  const std::string name = archive.name() + ":" + std::string(member.name);
  // Not close-on-exec: a script's interpreter opens it as /dev/fd/N.
  int fd = memfd_create("mmar-exec", 0);
  if (fd < 0) return sys_error(name + ": memfd_create", errno);
  UniqueFd mem(fd);
  // Streamed frame by frame: no copy of the member in our memory.
  if (auto copied = copy_member_to_fd(archive, member, fd); !copied.ok()) return std::move(copied).error();
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  fexecve(fd, args.data(), environ);
  return sys_error(name + ": fexecve", errno);
}

#if defined(__x86_64__)

// Close every close-on-exec fd, as execve would.
void close_cloexec_fds() {
  std::vector<int> fds;
  if (DIR* d = opendir("/proc/self/fd")) {
    const int self = dirfd(d);
    while (dirent* e = readdir(d)) {
      char* end = nullptr;
      long fd = std::strtol(e->d_name, &end, 10);
      if (end == e->d_name || *end != '\0' || fd == self) continue;
      int flags = fcntl(static_cast<int>(fd), F_GETFD);
      if (flags >= 0 && (flags & FD_CLOEXEC) != 0) fds.push_back(static_cast<int>(fd));
    }
    closedir(d);
  }
  for (int fd : fds) close(fd);
}

// Caught signals go back to their default action; ignored ones stay ignored.
void reset_signal_handlers() {
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction sa {};
    if (sigaction(sig, nullptr, &sa) != 0) continue;
    if (sa.sa_handler == SIG_IGN || sa.sa_handler == SIG_DFL) continue;
    sa = {};
    sa.sa_handler = SIG_DFL;
    sigaction(sig, &sa, nullptr);
  }
}

void unregister_rseq() {
#ifdef MMAR_HAVE_RSEQ_ABI
  if (&__rseq_size == nullptr || __rseq_size == 0) return;
  void* area = static_cast<char*>(__builtin_thread_pointer()) + __rseq_offset;
  constexpr int kRseqFlagUnregister = 1;
  constexpr uint32_t kRseqSig = 0x53053053;  // glibc's RSEQ_SIG on x86
  // glibc registers at least 32 bytes (the original struct rseq); __rseq_size
  // may say less (the features in use). Unregistering needs the same length.
  for (uint32_t len : {std::max(32u, __rseq_size), __rseq_size}) {
    if (syscall(SYS_rseq, area, len, kRseqFlagUnregister, kRseqSig) == 0) break;
  }
#endif
}

[[noreturn]] void jump_to(uint64_t sp, uint64_t entry) {
  // Operands pinned to rcx and rax: the registers zeroed here (rdx: no
  // rtld_fini; rbp: the outermost frame) must not hold either of them.
  asm volatile(
      "mov %0, %%rsp\n\t"
      "xor %%edx, %%edx\n\t"
      "xor %%ebp, %%ebp\n\t"
      "jmp *%1\n\t"
      :
      : "c"(sp), "a"(entry)
      : "memory");
  __builtin_unreachable();
}

// The initial process stack, laid out for `top` (exclusive) downwards:
// argc at the returned stack pointer (16-byte aligned), then argv, envp,
// auxv, and above them the strings and random bytes.
struct StackImage {
  std::vector<uint64_t> words;  // argc .. AT_NULL
  std::string strings;          // everything the words point at
  uint64_t sp = 0;
};

StackImage build_stack(uint64_t top, const std::vector<std::string>& argv, const MappedObject& prog,
                       const MappedObject* interp) {
  StackImage img;
  // Strings: random bytes, platform, argv, envp, execfn.
  std::vector<uint64_t> argv_off, env_off;
  char random[16];
  if (getrandom(random, sizeof random, 0) != sizeof random) {
    for (char& c : random) c = static_cast<char>(std::rand());
  }
  img.strings.append(random, sizeof random);
  const uint64_t platform_off = img.strings.size();
  img.strings.append("x86_64", 7);
  for (const auto& a : argv) {
    argv_off.push_back(img.strings.size());
    img.strings.append(a.c_str(), a.size() + 1);
  }
  for (char** e = environ; *e != nullptr; ++e) {
    env_off.push_back(img.strings.size());
    img.strings.append(*e, std::strlen(*e) + 1);
  }
  const uint64_t execfn_off = argv_off.empty() ? platform_off : argv_off[0];
  const uint64_t strings_base = (top - img.strings.size()) & ~uint64_t{15};

  auto& w = img.words;
  w.push_back(argv.size());
  for (uint64_t off : argv_off) w.push_back(strings_base + off);
  w.push_back(0);
  for (uint64_t off : env_off) w.push_back(strings_base + off);
  w.push_back(0);
  auto aux = [&](uint64_t key, uint64_t value) {
    w.push_back(key);
    w.push_back(value);
  };
  aux(AT_SYSINFO_EHDR, getauxval(AT_SYSINFO_EHDR));
  if (uint64_t v = getauxval(AT_MINSIGSTKSZ)) aux(AT_MINSIGSTKSZ, v);
  aux(AT_HWCAP, getauxval(AT_HWCAP));
  aux(AT_PAGESZ, static_cast<uint64_t>(sysconf(_SC_PAGESIZE)));
  aux(AT_CLKTCK, static_cast<uint64_t>(sysconf(_SC_CLK_TCK)));
  aux(AT_PHDR, prog.phdr());
  aux(AT_PHENT, sizeof(Elf64_Phdr));
  aux(AT_PHNUM, prog.phnum());
  aux(AT_BASE, interp != nullptr ? interp->load_bias() : 0);
  aux(AT_FLAGS, 0);
  aux(AT_ENTRY, prog.entry());
  aux(AT_UID, getuid());
  aux(AT_EUID, geteuid());
  aux(AT_GID, getgid());
  aux(AT_EGID, getegid());
  aux(AT_SECURE, 0);
  aux(AT_RANDOM, strings_base);
  if (uint64_t v = getauxval(AT_HWCAP2)) aux(AT_HWCAP2, v);
  aux(AT_EXECFN, strings_base + execfn_off);
  aux(AT_PLATFORM, strings_base + platform_off);
  aux(AT_NULL, 0);
  img.sp = (strings_base - w.size() * 8) & ~uint64_t{15};
  return img;
}

#endif  // __x86_64__

}  // namespace

Error exec_member(const Archive& archive, const Member& member, const std::vector<std::string>& argv,
                  const std::function<void(const std::string& why)>& on_fallback) {
  const std::string name = archive.name() + ":" + std::string(member.name);
  if (argv.empty()) return Error(Errc::invalid_argument, name + ": no argv[0]", Error::kNoOffset, EINVAL);
  std::string why;
#if defined(__x86_64__)
  auto prog = map_member(archive, member, kMapInterpret);
  std::optional<MappedObject> interp;
  if (!prog.ok()) {
    why = prog.error().message();
  } else if (prog->elf_type() != ET_EXEC && prog->elf_type() != ET_DYN) {
    why = name + ": not an executable ELF object";
  } else if (prog->phdr() == 0) {
    why = name + ": its program headers are not in a loaded segment (no AT_PHDR)";
  } else if (prog->interpreter()) {
    const std::string& path = *prog->interpreter();
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
    // writer forever. Only a regular file can be an interpreter (the kernel
    // refuses anything else with EACCES, so there is no fallback either).
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat ist {};
    if (fd >= 0 && (fstat(fd, &ist) != 0 || !S_ISREG(ist.st_mode))) {
      close(fd);
      return Error(Errc::invalid_argument, name + ": interpreter " + path + ": not a regular file", Error::kNoOffset,
                   EACCES);
    }
    if (fd >= 0) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    if (fd < 0) {
      why = name + ": interpreter " + path + ": " + std::strerror(errno);
    } else {
      UniqueFd ifd(fd);
      auto m = map_object(fd, 0, 0, kMapInterpret, 0, path);
      if (!m.ok()) {
        why = m.error().message();
      } else if (m->elf_type() != ET_DYN && m->elf_type() != ET_EXEC) {
        why = path + ": interpreter is not an executable ELF object";
      } else {
        interp = std::move(m).value();
      }
    }
  }
  if (why.empty()) {
    // Far below the live frames: the calls made from here on stay above.
    volatile char here = 0;
    const uint64_t top = (reinterpret_cast<uint64_t>(&here) - (256u << 10)) & ~uint64_t{4095};
    StackImage img = build_stack(top, argv, *prog, interp ? &*interp : nullptr);
    const uint64_t entry = interp ? interp->entry() : prog->entry();
    prog->release();
    if (interp) interp->release();
    std::fflush(nullptr);
    std::string comm = argv[0].substr(argv[0].rfind('/') + 1);
    prctl(PR_SET_NAME, comm.c_str(), 0, 0, 0);
    close_cloexec_fds();
    reset_signal_handlers();
    // Write the image; nothing below this point may allocate or call far.
    std::memcpy(reinterpret_cast<void*>(img.sp), img.words.data(), img.words.size() * 8);
    const uint64_t strings_base = (top - img.strings.size()) & ~uint64_t{15};
    std::memcpy(reinterpret_cast<void*>(strings_base), img.strings.data(), img.strings.size());
    unregister_rseq();
    jump_to(img.sp, entry);
  }
#else
  why = "user-space exec is implemented for x86-64 only";
#endif
  if (on_fallback) on_fallback(why);
  return exec_via_memfd(archive, member, argv);
}

}  // namespace mmar
