// SPDX-License-Identifier: BSD-2-Clause
// mmar exec: real Debian programs run out of an archive (raw and compressed,
// 4K and 16K aligned) give the same output and exit status as run directly.
#include <gtest/gtest.h>
#include <unistd.h>

#include "support/test_support.h"

namespace mmar {
namespace {

using test::TempDir;

std::string q(const std::string& s) { return "'" + s + "'"; }
const std::string kMmar = MMAR_BIN;

struct Outcome {
  int status;
  std::string out;
};

Outcome sh(const std::string& cmd) {
  Outcome o;
  o.status = test::run(cmd, &o.out);
  return o;
}

class Exec : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const std::string bin = *dir_ / "tree/bin";
    ASSERT_EQ(test::run("mkdir -p " + q(bin)), 0);
    // Real programs from the system: dynamic PIE, a static one, an
    // interpreter (ET_EXEC or PIE, whichever Debian ships), and a script.
    std::string python = "/usr/bin/python3";
    char resolved[4096];
    ssize_t n = readlink(python.c_str(), resolved, sizeof resolved - 1);
    if (n > 0) python = "/usr/bin/" + std::string(resolved, static_cast<size_t>(n));
    for (const std::string& p :
         {std::string("/usr/bin/ls"), std::string("/usr/bin/env"), std::string("/bin/busybox"), python}) {
      if (access(p.c_str(), X_OK) == 0) {
        ASSERT_EQ(test::run("cp " + q(p) + " " + q(bin)), 0);
        programs_.push_back(p);
      }
    }
    test::write_file(bin + "/hello.sh", test::to_bytes("#!/bin/sh\necho \"script: $1\"\nexit 7\n"), 0755);
    for (const char* variant : {"raw4k", "raw16k", "zstd"}) {
      std::string flags = std::string(variant) == "raw4k"    ? "--compress none"
                          : std::string(variant) == "raw16k" ? "--compress none --align 16384"
                                                             : "--compress zstd --threshold 1";
      ASSERT_EQ(test::run(kMmar + " create " + flags + " -f " + q(*dir_ / (std::string(variant) + ".mmar")) + " -C " +
                          q(*dir_ / "tree") + " bin"),
                0);
    }
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  std::string archive() const { return *dir_ / (GetParam() + ".mmar"); }
  static bool have(const std::string& path) {
    for (const auto& p : programs_) {
      if (p == path) return true;
    }
    return false;
  }
  // The same command line, run directly and through mmar exec.
  void same(const std::string& program, const std::string& args, const std::string& env_prefix = "") {
    const std::string member = "bin/" + program.substr(program.rfind('/') + 1);
    Outcome direct = sh(env_prefix + q(program) + " " + args + " 2>&1");
    Outcome ours = sh(env_prefix + kMmar + " exec --argv0 " + q(program) + " " + q(archive() + ":" + member) + " " +
                      args + " 2>&1");
    EXPECT_EQ(ours.status, direct.status) << program << " " << args << "\n" << ours.out;
    EXPECT_EQ(ours.out, direct.out) << program << " " << args;
  }
  static TempDir* dir_;
  static std::vector<std::string> programs_;
};
TempDir* Exec::dir_ = nullptr;
std::vector<std::string> Exec::programs_;

TEST_P(Exec, Ls) {
  same("/usr/bin/ls", "-la --time-style=+%s " + q(std::string(MMAR_SOURCE_DIR) + "/docs"));
  same("/usr/bin/ls", q("/nonexistent/path"));  // exit status 2
}

TEST_P(Exec, Env) { same("/usr/bin/env", "", "env -i FOO=bar HOME=/nowhere "); }

TEST_P(Exec, StaticBusybox) {
  if (!have("/bin/busybox")) GTEST_SKIP() << "busybox-static is not installed";
  same("/bin/busybox", "sh -c 'echo $((6*7)); exit 5'");
  same("/bin/busybox", "sha256sum " + q(std::string(MMAR_SOURCE_DIR) + "/docs/FORMAT.md"));
}

TEST_P(Exec, Python) {
  std::string python;
  for (const auto& p : programs_) {
    if (p.find("python3") != std::string::npos) python = p;
  }
  if (python.empty()) GTEST_SKIP() << "python3 is not installed";
  same(python, "-c 'import sys, json; print(json.dumps({\"argv\": sys.argv[1:], \"x\": 6*7})); sys.exit(3)' a b");
}

TEST_P(Exec, ScriptFallsBackToFexecveAndSaysWhy) {
  Outcome o = sh(kMmar + " exec -v " + q(archive() + ":bin/hello.sh") + " arg1 2>&1");
  EXPECT_EQ(o.status, 7);
  EXPECT_NE(o.out.find("script: arg1"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("not an ELF object"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("fexecve"), std::string::npos) << o.out;
}

TEST_P(Exec, Errors) {
  EXPECT_EQ(sh(kMmar + " exec 2>/dev/null").status, 2);
  EXPECT_EQ(sh(kMmar + " exec " + q(archive()) + " 2>/dev/null").status, 2) << "no :MEMBER";
  Outcome missing = sh(kMmar + " exec " + q(archive() + ":bin/nope") + " 2>&1");
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.out.find("bin/nope"), std::string::npos) << missing.out;
}

INSTANTIATE_TEST_SUITE_P(Archives, Exec, ::testing::Values("raw4k", "raw16k", "zstd"));

}  // namespace
}  // namespace mmar
