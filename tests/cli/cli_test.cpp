// SPDX-License-Identifier: BSD-2-Clause
// The mmar command driven like a user would, in scratch directories, with
// tar as the oracle for what a round trip through an archive must preserve.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "support/test_support.h"

namespace mmar {
namespace {

using test::TempDir;

const std::string kMmar = MMAR_BIN;

int mmar(const std::string& args, std::string* out = nullptr) { return test::run(kMmar + " " + args + " 2>&1", out); }

std::string q(const std::string& s) { return "'" + s + "'"; }

TEST(Cli, UsageAndHelp) {
  std::string out;
  EXPECT_EQ(mmar("", &out), 2);
  EXPECT_NE(out.find("Usage: mmar <verb>"), std::string::npos);
  EXPECT_EQ(mmar("frobnicate", &out), 2);
  EXPECT_NE(out.find("mmar: unknown verb 'frobnicate'"), std::string::npos);
  for (const char* verb : {"create", "list", "extract", "cat", "info", "verify"}) {
    EXPECT_EQ(mmar(std::string(verb) + " --help", &out), 0) << verb;
    EXPECT_NE(out.find(std::string("Usage: mmar ") + verb), std::string::npos) << out;
    EXPECT_EQ(mmar(std::string(verb) + " --no-such-option", &out), 2) << verb;
    EXPECT_NE(out.find("unknown option '--no-such-option'"), std::string::npos) << out;
  }
  EXPECT_EQ(mmar("create -f x.mmar", &out), 2);
  EXPECT_EQ(mmar("create -f x.mmar --compress lz4 .", &out), 2);
  EXPECT_NE(out.find("unknown codec 'lz4'"), std::string::npos);
  EXPECT_EQ(mmar("create -f x.mmar --align 1000 .", &out), 2);
  EXPECT_EQ(mmar("list", &out), 2);
}

// `mmar help VERB` is `mmar VERB --help` (a btf or ctf sub-verb too); help,
// --help and --version take nothing else: one line, exit 2, not ignored.
TEST(Cli, HelpVerbAndNoExtraArguments) {
  std::string out, direct;
  for (const std::string verb : {"create", "extract", "verify", "btf", "btf dump", "ctf find"}) {
    EXPECT_EQ(mmar("help " + verb, &out), 0) << verb << ": " << out;
    ASSERT_EQ(mmar(verb + " --help", &direct), 0) << verb;
    EXPECT_EQ(out, direct) << verb;
    EXPECT_EQ(out.rfind("Usage: mmar " + verb.substr(0, verb.find(' ')), 0), 0u) << out;
  }
  EXPECT_EQ(mmar("help frobnicate", &out), 2);
  EXPECT_NE(out.find("unknown verb 'frobnicate'"), std::string::npos) << out;
  for (const char* extra : {"help create extra", "help btf dump extra", "--version extra", "-V extra", "--help extra",
                            "-h extra", "help create --help"}) {
    EXPECT_EQ(mmar(extra, &out), 2) << extra << ": " << out;
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << extra << ": " << out;
    EXPECT_EQ(out.rfind("mmar: ", 0), 0u) << out;
    EXPECT_NE(out.find("unexpected argument"), std::string::npos) << out;
  }
  EXPECT_EQ(mmar("--version", &out), 0);
  EXPECT_EQ(out.rfind("mmar ", 0), 0u) << out;
}

// Progress bars go to stderr when forced (--progress; a terminal otherwise)
// and never with --no-progress: verify counts members, extract and compact
// bytes, btf pack modules.
TEST(Cli, ProgressWhenForcedNoneWhenRefused) {
  TempDir tmp;
  std::string out;
  test::write_file(tmp / "f", std::vector<std::byte>(300000, std::byte{7}));
  test::write_file(tmp / "g", test::to_bytes("hello\n"));
  ASSERT_EQ(mmar("create -f " + q(tmp / "a.mmar") + " -C " + q(tmp.path()) + " f g", &out), 0) << out;
  struct Case {
    std::string args;
    std::string amount;  // what the bar counts
  };
  std::vector<Case> cases = {
      {"verify " + q(tmp / "a.mmar"), " / 2 members"},
      {"extract -f " + q(tmp / "a.mmar") + " -C " + q(tmp / "x"), "B / "},
      {"compact --compress zstd " + q(tmp / "a.mmar"), "B / "},
  };
  const bool btf_tools = test::run("command -v pahole && command -v gcc") == 0;
  if (btf_tools) {
    const std::string inputs = MMAR_TEST_INPUTS;
    ASSERT_EQ(test::run("cd " + q(tmp.path()) + " && gcc -g -O1 -c " + q(inputs + "/base.c") +
                        " -o base.o && pahole -J base.o && gcc -g -O1 -c " + q(inputs + "/module.c") +
                        " -o ms.o && pahole -J --btf_base base.o ms.o"),
              0);
    cases.push_back(
        {"btf pack -f " + q(tmp / "k.mmar") + " " + q(tmp / "base.o") + " " + q(tmp / "ms.o"), "1 / 1 modules"});
  }
  auto read_err = [&] {
    std::string err;
    test::run("cat " + q(tmp / "err"), &err);
    return err;
  };
  for (const Case& c : cases) {
    test::run("rm -rf " + q(tmp / "x"));
    ASSERT_EQ(test::run(kMmar + " " + c.args + " --progress 2>" + q(tmp / "err") + " >/dev/null"), 0) << c.args;
    const std::string err = read_err();
    EXPECT_NE(err.find("%"), std::string::npos) << c.args << ": " << err;
    EXPECT_NE(err.find(c.amount), std::string::npos) << c.args << ": " << err;
    test::run("rm -rf " + q(tmp / "x"));
    ASSERT_EQ(test::run(kMmar + " " + c.args + " --no-progress 2>" + q(tmp / "err") + " >/dev/null"), 0) << c.args;
    EXPECT_EQ(read_err(), "") << c.args;
  }
  if (btf_tools) {
    ASSERT_EQ(test::run(kMmar + " btf pack -f " + q(tmp / "k.mmar") + " " + q(tmp / "base.o") + " " + q(tmp / "ms.o") +
                        " --progress 2>" + q(tmp / "err") + " >/dev/null"),
              0);
    EXPECT_NE(read_err().find("btf pack ["), std::string::npos);
  }
}

// Owners as root restores them: by the names recorded (tar's default), by
// number with --numeric-owner. And the names recorded from a tree are those
// tar records of it (root's included), so an archive made from the tree and
// one made from tar's archive of it say the same.
TEST(Cli, OwnersByNameOrNumberAsTarRecordsThem) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (chown)";
  TempDir tmp;
  std::string out;
  ASSERT_EQ(test::run("python3 -c \"import tarfile, io; t=tarfile.open('" + tmp / "n.tar" +
                      "','w',format=tarfile.PAX_FORMAT); ti=tarfile.TarInfo('f'); ti.size=1; ti.uid=4242; "
                      "ti.uname='root'; ti.gid=4343; ti.gname='root'; t.addfile(ti, io.BytesIO(b'x')); t.close()\""),
            0);
  ASSERT_EQ(mmar("create -f " + q(tmp / "n.mmar") + " --from " + q(tmp / "n.tar"), &out), 0) << out;
  ASSERT_EQ(mmar("extract -f " + q(tmp / "n.mmar") + " -C " + q(tmp / "by-name"), &out), 0) << out;
  ASSERT_EQ(mmar("extract --numeric-owner -f " + q(tmp / "n.mmar") + " -C " + q(tmp / "by-number"), &out), 0) << out;
  ASSERT_EQ(test::run("stat -c '%u %g' " + q(tmp / "by-name/f") + " " + q(tmp / "by-number/f"), &out), 0);
  EXPECT_EQ(out, "0 0\n4242 4343\n");

  const std::string src = tmp / "src";
  ASSERT_EQ(::mkdir(src.c_str(), 0755), 0);
  for (const char* f : {"user-of-root-group", "setuid-root", "root-of-daemon-group", "plain-root"}) {
    test::write_file(src + "/" + f, test::to_bytes(f), 0755);
  }
  ASSERT_EQ(::chown((src + "/user-of-root-group").c_str(), 1, 0), 0);  // daemon:root on Debian
  ASSERT_EQ(::chmod((src + "/setuid-root").c_str(), 04755), 0);
  ASSERT_EQ(::chown((src + "/root-of-daemon-group").c_str(), 0, 1), 0);
  ASSERT_EQ(mmar("create -f " + q(tmp / "tree.mmar") + " -C " + q(src) + " .", &out), 0) << out;
  ASSERT_EQ(test::run("tar --format=posix -C " + q(src) + " -cf " + q(tmp / "tree.tar") + " ."), 0);
  ASSERT_EQ(mmar("create -f " + q(tmp / "tar.mmar") + " --from " + q(tmp / "tree.tar"), &out), 0) << out;
  const std::string owners =
      " | python3 -c 'import json, sys; [print(m[\"name\"], m.get(\"uid\"), m.get(\"gid\"), m.get(\"uname\"), "
      "m.get(\"gname\")) for m in json.load(sys.stdin) if m[\"type\"] == \"file\"]'";
  std::string from_tree, from_tar;
  ASSERT_EQ(test::run(kMmar + " list --json " + q(tmp / "tree.mmar") + owners, &from_tree), 0);
  ASSERT_EQ(test::run(kMmar + " list --json " + q(tmp / "tar.mmar") + owners, &from_tar), 0);
  EXPECT_EQ(from_tree, from_tar);
  EXPECT_NE(from_tree.find("setuid-root 0 0 root root"), std::string::npos) << from_tree;
  EXPECT_NE(from_tree.find("plain-root None None None None"), std::string::npos) << from_tree;
}

// The README's synopsis of the command names every option each verb takes
// (its long or its short form, on that verb's lines), as its --help lists
// them: the synopsis does not drift from the command.
TEST(Cli, ReadmeSynopsisHasEveryOption) {
  const std::string script =
      "import re, subprocess, sys\n"
      "mmar, readme = sys.argv[1], open(sys.argv[2]).read()\n"
      "block = readme.split('## The command', 1)[1].split('```', 2)[1]\n"
      "lines, verb = {}, None\n"
      "for l in block.splitlines():\n"
      "    m = re.match(r'mmar (\\w[\\w-]*)', l)\n"
      "    if m: verb = m.group(1)\n"
      "    elif not l.startswith(' '): verb = None\n"
      "    if verb: lines[verb] = lines.get(verb, '') + ' ' + l\n"
      "top = subprocess.run([mmar, '--help'], capture_output=True, text=True).stdout\n"
      "verbs = re.findall(r'^  ([a-z]+) ', top.split('Verbs:')[1], re.M)\n"
      "for v in verbs:\n"
      "    h = subprocess.run([mmar, v, '--help'], capture_output=True, text=True).stdout\n"
      "    for short, long in re.findall(r'^  (?:-(\\w), |    )--([a-z0-9-]+)', h, re.M):\n"
      "        if long == 'help': continue\n"
      "        text = lines.get(v, '')\n"
      "        if not re.search(r'--' + long + r'\\b', text) and not (short and re.search(r'(?<![\\w-])-' + short + "
      "r'\\b', text)):\n"
      "            print(v, '--' + long)\n";
  TempDir tmp;
  test::write_file(tmp / "check.py", test::to_bytes(script));
  std::string out;
  ASSERT_EQ(test::run("python3 " + q(tmp / "check.py") + " " + q(kMmar) + " " +
                          q(std::string(MMAR_SOURCE_DIR) + "/README.md") + " 2>&1",
                      &out),
            0)
      << out;
  EXPECT_EQ(out, "") << "options missing from README.md's synopsis";
}

TEST(Cli, RoundTripAgainstTar) {
  TempDir tmp;
  std::string src = tmp / "src";
  ::mkdir(src.c_str(), 0755);
  test::TreeSpec spec;
  spec.seed = 1234;
  test::make_random_tree(src, spec);
  std::string out;
  ASSERT_EQ(mmar("create -f " + q(tmp / "a.mmar") + " -C " + q(src) + " .", &out), 0) << out;
  ASSERT_EQ(test::run("tar --format=posix -C " + q(src) + " -cf " + q(tmp / "a.tar") + " ."), 0);

  // Same names as tar lists (tar adds "./" and a trailing "/" for dirs).
  std::string ours, theirs;
  // Both escape names alike (GNU tar's "escape" quoting: \t, \\, \ooo); the
  // escaped names are compared as sorted sets.
  ASSERT_EQ(mmar("list " + q(tmp / "a.mmar") + " | LC_ALL=C sort", &ours), 0);
  ASSERT_EQ(test::run("LC_ALL=C.UTF-8 tar --quoting-style=escape -tf " + q(tmp / "a.tar") +
                          " | sed -e 's|^\\./||' -e 's|/$||' | grep -v '^$' | LC_ALL=C sort",
                      &theirs),
            0);
  EXPECT_EQ(ours, theirs);

  // Extracting either gives the same tree: contents, modes, mtimes, links.
  ::mkdir((tmp / "x-tar").c_str(), 0755);
  ASSERT_EQ(test::run("tar -C " + q(tmp / "x-tar") + " -xf " + q(tmp / "a.tar")), 0);
  ASSERT_EQ(mmar("extract -f " + q(tmp / "a.mmar") + " -C " + q(tmp / "x-mmar"), &out), 0) << out;
  EXPECT_EQ(test::diff_trees(tmp / "x-tar", tmp / "x-mmar"), "");
  EXPECT_EQ(test::diff_trees(src, tmp / "x-mmar"), "");

  // cat gives the bytes of one member; info and verify agree it is sound.
  std::string first_file;
  ASSERT_EQ(
      test::run("cd " + q(src) + " && find . -type f -size +1k | LC_ALL=C sort | head -n1 | cut -c3-", &first_file), 0);
  first_file.pop_back();
  ASSERT_EQ(
      test::run(kMmar + " cat -f " + q(tmp / "a.mmar") + " " + q(first_file) + " | cmp - " + q(src + "/" + first_file)),
      0);
  ASSERT_EQ(mmar("verify " + q(tmp / "a.mmar"), &out), 0);
  EXPECT_NE(out.find("members OK"), std::string::npos);
  ASSERT_EQ(mmar("info --json " + q(tmp / "a.mmar"), &out), 0);
  EXPECT_NE(out.find("\"format\":\"mmar\""), std::string::npos);
  ASSERT_EQ(mmar("list -l " + q(tmp / "a.mmar"), &out), 0);
  EXPECT_NE(out.find(" zstd "), std::string::npos);
  EXPECT_NE(out.find(" -> "), std::string::npos);
}

TEST(Cli, JsonIsValid) {
  TempDir tmp;
  test::write_file(tmp / "f", test::to_bytes("a \"quoted\"\n name"));
  test::write_file(tmp / "we\"ird\tname", test::to_bytes(std::string(9000, 'q')));
  ASSERT_EQ(mmar("create -f " + q(tmp / "a.mmar") + " -C " + q(tmp.path()) + " f 'we\"ird\tname'"), 0);
  for (const char* cmd : {"list --json", "info --json", "verify --json"}) {
    std::string out;
    ASSERT_EQ(test::run(kMmar + " " + cmd + " " + q(tmp / "a.mmar") +
                            " | python3 -c 'import json,sys; d=json.load(sys.stdin); print(type(d).__name__)'",
                        &out),
              0)
        << cmd;
  }
  std::string out;
  ASSERT_EQ(test::run(kMmar + " list --json " + q(tmp / "a.mmar") +
                          " | python3 -c 'import json,sys; print(sorted(m[\"name\"] for m in json.load(sys.stdin)))'",
                      &out),
            0);
  EXPECT_EQ(out, "['f', 'we\"ird\\tname']\n");
  // docs/JSON.md: mtime and mtime_nsec are exact in a double (jq), and
  // give mtime_ns back.
  ASSERT_EQ(test::run(kMmar + " list --json " + q(tmp / "a.mmar") +
                          " | python3 -c 'import json,sys; print(all(m[\"mtime\"] * 10**9 + m[\"mtime_nsec\"] == "
                          "m[\"mtime_ns\"] and 0 <= m[\"mtime_nsec\"] < 10**9 and m[\"mtime\"] < 2**53 "
                          "for m in json.load(sys.stdin)))'",
                      &out),
            0);
  EXPECT_EQ(out, "True\n");
}

// Every verb's --json is one valid JSON value (JSON Lines for the find
// verbs), written by the one writer, and output that cannot be written is an
// error: exit 1, for text and for JSON.
TEST(Cli, EveryJsonVerbIsValidAndWriteErrorsFail) {
  TempDir tmp;
  test::write_file(tmp / "t.c", test::to_bytes("struct fwd; struct fwd *p;\n"
                                               "struct s { int a; char b[2]; } s;\n"));
  std::string out;
  ASSERT_EQ(test::run("gcc -gctf -c -o " + q(tmp / "t.o") + " " + q(tmp / "t.c") + " 2>&1", &out), 0) << out;
  test::write_file(tmp / "f", test::to_bytes("x"));
  ASSERT_EQ(mmar("create -f " + q(tmp / "a.mmar") + " -C " + q(tmp.path()) + " f t.o"), 0);
  const std::string a = q(tmp / "a.mmar");
  const std::string check =
      " | python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin] if len(sys.argv) > 1 else json.load(sys.stdin); "
      "print(\"ok\")' ";
  struct Case {
    std::string cmd;
    bool lines;
  };
  std::vector<Case> cases = {
      {"list --json " + a, false},
      {"list --json " + a + " f", false},
      {"info --json " + a, false},
      {"verify --json " + a, false},
      {"create --json -f " + q(tmp / "b.mmar") + " -C " + q(tmp.path()) + " f", false},
      {"map --json /bin/true", false},
      {"ctf dump --json " + q(tmp / "t.o"), false},
      // A forward has no size: null, never a bare "-".
      {"ctf find --json " + q(tmp / "t.o") + " 'struct fwd' 'struct s'", true},
  };
  if (std::filesystem::exists("/sys/kernel/btf/vmlinux")) {
    cases.push_back({"btf find --json /sys/kernel/btf/vmlinux task_struct pid", true});
    cases.push_back({"btf stats --json /sys/kernel/btf/vmlinux", false});
  }
  for (const auto& c : cases) {
    ASSERT_EQ(test::run(kMmar + " " + c.cmd + check + (c.lines ? "lines" : "") + " 2>&1", &out), 0) << c.cmd << out;
    EXPECT_EQ(out, "ok\n") << c.cmd;
  }
  ASSERT_EQ(test::run(kMmar + " ctf find --json " + q(tmp / "t.o") + " 'struct fwd'", &out), 0);
  EXPECT_NE(out.find("\"size\":null"), std::string::npos) << out;
  // Output that does not reach its reader is never a success.
  for (const std::string& cmd : std::vector<std::string> {"list " + a, "list --json " + a, "list -l " + a, "info " + a, "info --json " + a,
                                "verify --json " + a, "ctf dump " + q(tmp / "t.o"), "ctf find --json " + q(tmp / "t.o") + " 'struct s'",
                                "cat " + a + " f"}) {
    EXPECT_EQ(test::run(kMmar + " " + cmd + " > /dev/full 2>/dev/null"), 1) << cmd;
  }
}

// Killed by SIGTERM (or Ctrl-C) while writing, mmar leaves nothing beside
// its output: not the temporary archive, not an import's spool; an existing
// archive at the target is untouched.
TEST(Cli, SignalsLeaveNoTemporaries) {
  TempDir tmp;
  const std::string t = tmp.path();
  // Slow to compress (xz -9 on one thread) so the signal lands mid-write.
  ASSERT_EQ(test::run("head -c 24000000 /dev/urandom | base64 > " + q(t + "/big.txt")), 0);
  ASSERT_EQ(::mkdir((t + "/o").c_str(), 0755), 0);
  test::write_file(tmp / "o/out.mmar", test::to_bytes("previous"));
  const std::string wait_for = "for i in $(seq 400); do ls -A " + q(t + "/o") + " | grep -q '%s' && break; sleep 0.05; done; ";
  auto script = [&](const std::string& start, const char* pattern) {
    char w[512];
    std::snprintf(w, sizeof w, wait_for.c_str(), pattern);
    return start + " & pid=$!; " + w + "ls -A " + q(t + "/o") + "; kill -TERM $pid; wait $pid; echo status=$?; ls -A " +
           q(t + "/o");
  };
  std::string out;
  ASSERT_EQ(test::run(script(kMmar + " create -f " + q(t + "/o/out.mmar") + " --compress xz --level 9 -j1 -C " + q(t) +
                                 " big.txt",
                             "tmp-"),
                      &out),
            0);
  // The temporary was there while writing, then killed: 128 + SIGTERM.
  EXPECT_NE(out.find(".out.mmar.tmp-"), std::string::npos) << out;
  EXPECT_NE(out.find("status=143\nout.mmar\n"), std::string::npos) << out;
  EXPECT_EQ(test::read_file(tmp / "o/out.mmar"), test::to_bytes("previous"));
  ASSERT_EQ(test::run("tar -C " + q(t) + " -cf " + q(t + "/t.tar") + " big.txt"), 0);
  ASSERT_EQ(test::run(script("(head -c 20000000 " + q(t + "/t.tar") + "; sleep 5) | " + kMmar + " create -f " +
                                 q(t + "/o/from.mmar") + " --from -",
                             "mmar-import"),
                      &out),
            0);
  EXPECT_NE(out.find(".mmar-import."), std::string::npos) << out;
  EXPECT_NE(out.find("status=143\nout.mmar\n"), std::string::npos) << out;
  EXPECT_EQ(out.substr(out.find("status=")).find(".mmar-import"), std::string::npos) << out;
}

TEST(Cli, ExtractionNeverEscapesTheTarget) {
  TempDir tmp;
  std::string outside = tmp / "outside";
  ::mkdir(outside.c_str(), 0755);
  // A symlink member pointing outside, then a member "through" it. The
  // writer refuses to write that (a member below a non-directory), so it is
  // crafted: directory "a" turned into a symlink with the bytes of "s".
  Writer w;
  ASSERT_TRUE(w.add_directory("a").ok());
  ASSERT_TRUE(w.add_bytes("a/evil", test::to_bytes("pwned")).ok());
  ASSERT_TRUE(w.add_bytes("ok", test::to_bytes("fine")).ok());
  ASSERT_TRUE(w.add_symlink("s", outside).ok());
  ASSERT_TRUE(w.write(tmp / "evil.mmar").ok());
  {
    auto a = Archive::open(tmp / "evil.mmar");
    ASSERT_TRUE(a.ok());
    auto link = a->find("s");
    ASSERT_TRUE(link.ok());
    const Member l = *link;
    auto bytes = test::read_file(tmp / "evil.mmar");
    test::patch_entry(bytes, 0, [&](format::Entry& e) {
      e.me_mode = S_IFLNK | 0777;
      e.me_data_offset = l.data_offset;
      e.me_stored_size = l.stored_size;
      e.me_size = l.size;
      e.me_xxh3 = l.xxh3;
    });
    test::write_file(tmp / "evil.mmar", bytes);
  }
  std::string out;
  EXPECT_EQ(mmar("extract -f " + q(tmp / "evil.mmar") + " -C " + q(tmp / "target"), &out), 1);
  EXPECT_NE(out.find("refusing to extract 'a/evil'"), std::string::npos) << out;
  EXPECT_NE(::access((outside + "/evil").c_str(), F_OK), 0);
  EXPECT_EQ(::access((tmp / "target/ok").c_str(), F_OK), 0);  // the rest is extracted

  // A pre-existing symlink in the target is not followed either.
  ::mkdir((tmp / "t2").c_str(), 0755);
  ASSERT_EQ(::symlink(outside.c_str(), (tmp / "t2/a").c_str()), 0);
  Writer w2;
  ASSERT_TRUE(w2.add_bytes("a/evil2", test::to_bytes("pwned")).ok());
  ASSERT_TRUE(w2.write(tmp / "evil2.mmar").ok());
  EXPECT_EQ(mmar("extract -f " + q(tmp / "evil2.mmar") + " -C " + q(tmp / "t2"), &out), 1);
  EXPECT_NE(::access((outside + "/evil2").c_str(), F_OK), 0);

  // A '..' name smuggled into the index (checksums fixed up) is refused.
  Writer w3;
  ASSERT_TRUE(w3.add_bytes("zz/x", test::to_bytes("pwned")).ok());
  ASSERT_TRUE(w3.write(tmp / "dots.mmar").ok());
  auto b = test::read_file(tmp / "dots.mmar");
  test::plain_index(b);
  auto sb = load<format::Superblock>(b.data());
  std::memcpy(b.data() + sb.sb_index_offset + format::kEntrySize, "../x", 4);
  test::reseal(b);
  test::write_file(tmp / "dots.mmar", b);
  EXPECT_EQ(mmar("extract -f " + q(tmp / "dots.mmar") + " -C " + q(tmp / "t3/inner"), &out), 1);
  EXPECT_NE(out.find("'..' path component"), std::string::npos) << out;
  EXPECT_NE(::access((tmp / "t3/x").c_str(), F_OK), 0);
}

TEST(Cli, BadArchivesGetOneLineErrors) {
  TempDir tmp;
  Writer w;
  ASSERT_TRUE(w.add_bytes("m", test::to_bytes(std::string(5000, 'm'))).ok());
  ASSERT_TRUE(w.add_bytes("raw", test::to_bytes("raw bytes")).ok());
  ASSERT_TRUE(w.write(tmp / "a.mmar").ok());
  auto good = test::read_file(tmp / "a.mmar");

  auto truncated = good;
  truncated.resize(200);
  test::write_file(tmp / "t.mmar", truncated);
  std::string out;
  for (const char* verb : {"list", "info", "verify", "extract -C "}) {
    std::string cmd = std::string(verb) + (std::string(verb).find("-C") != std::string::npos ? q(tmp / "x") : "");
    EXPECT_EQ(mmar(cmd + " -f " + q(tmp / "t.mmar"), &out), 1) << verb;
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
    EXPECT_EQ(out.rfind("mmar: " + tmp / "t.mmar" + ": ", 0), 0u) << out;
  }

  // A flipped byte inside a raw member: verify names it, exit 1.
  auto flipped = good;
  auto a = Archive::open(Source::borrow(good, "a"));
  auto raw = a->find("raw");
  flipped[raw->data_offset] ^= std::byte{0x20};
  test::write_file(tmp / "f.mmar", flipped);
  EXPECT_EQ(mmar("verify " + q(tmp / "f.mmar"), &out), 1);
  EXPECT_NE(out.find("member 'raw': checksum mismatch"), std::string::npos) << out;
  EXPECT_EQ(mmar("verify -q " + q(tmp / "f.mmar"), &out), 1);
  EXPECT_EQ(out, "");
  EXPECT_EQ(mmar("cat " + q(tmp / "a.mmar") + " nope", &out), 1);
  EXPECT_NE(out.find("no member named 'nope'"), std::string::npos);
  EXPECT_EQ(mmar("list /nonexistent.mmar", &out), 1);
  EXPECT_EQ(out, "mmar: /nonexistent.mmar: No such file or directory\n");
}

TEST(Cli, StdinAndPread) {
  TempDir tmp;
  test::write_file(tmp / "x", test::to_bytes(std::string(10000, 'x')));
  ASSERT_EQ(mmar("create -f " + q(tmp / "a.mmar") + " -C " + q(tmp.path()) + " x"), 0);
  std::string out;
  ASSERT_EQ(test::run(kMmar + " cat -f - x < " + q(tmp / "a.mmar") + " | wc -c", &out), 0);
  EXPECT_EQ(out, "10000\n");
  ASSERT_EQ(test::run(kMmar + " info --pread " + q(tmp / "a.mmar") + " | grep access", &out), 0);
  EXPECT_EQ(out, "access:      pread\n");
}

// No owner is stored: setuid/setgid bits are dropped at extraction unless
// -p asks for them (otherwise an extracting root makes them setuid-root).
TEST(Cli, ExtractDropsSetuidUnlessAsked) {
  TempDir tmp;
  std::string src = tmp / "src";
  ASSERT_EQ(::mkdir(src.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((src + "/d").c_str(), 0755), 0);
  test::write_file(src + "/d/suid", test::to_bytes("#!/bin/sh\n"), 0755);
  test::write_file(src + "/d/sgid", test::to_bytes("#!/bin/sh\n"), 0755);
  test::write_file(src + "/d/sticky", test::to_bytes("x"), 0644);
  ASSERT_EQ(::chmod((src + "/d/suid").c_str(), 04755), 0);
  ASSERT_EQ(::chmod((src + "/d/sgid").c_str(), 02755), 0);
  ASSERT_EQ(::chmod((src + "/d/sticky").c_str(), 01644), 0);
  ASSERT_EQ(::chmod((src + "/d").c_str(), 02775), 0);
  std::string out;
  // Without owners recorded, setuid and setgid bits would belong to whoever
  // extracts: dropped unless asked for.
  ASSERT_EQ(mmar("create --no-owners -f " + q(tmp / "a.mmar") + " -C " + q(src) + " .", &out), 0) << out;
  auto mode = [](const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 0xffffffffu;
  };
  ASSERT_EQ(mmar("extract -f " + q(tmp / "a.mmar") + " -C " + q(tmp / "x"), &out), 0) << out;
  EXPECT_EQ(mode(tmp / "x/d/suid"), 0755u);
  EXPECT_EQ(mode(tmp / "x/d/sgid"), 0755u);
  EXPECT_EQ(mode(tmp / "x/d/sticky"), 01644u);
  EXPECT_EQ(mode(tmp / "x/d"), 0775u);
  ASSERT_EQ(mmar("extract -p -f " + q(tmp / "a.mmar") + " -C " + q(tmp / "p"), &out), 0) << out;
  EXPECT_EQ(mode(tmp / "p/d/suid"), 04755u);
  EXPECT_EQ(mode(tmp / "p/d/sgid"), 02755u);
  EXPECT_EQ(mode(tmp / "p/d"), 02775u);
  ASSERT_EQ(mmar("extract --same-permissions -f " + q(tmp / "a.mmar") + " -C " + q(tmp / "q") + " d/suid", &out), 0);
  EXPECT_EQ(mode(tmp / "q/d/suid"), 04755u);
  // With their owner recorded (what create does for setuid files), the bits
  // come back with the owner when it is restored (root's default), and not
  // when it is not.
  ASSERT_EQ(mmar("create -f " + q(tmp / "o.mmar") + " -C " + q(src) + " .", &out), 0) << out;
  if (::geteuid() == 0) {
    ASSERT_EQ(mmar("extract -f " + q(tmp / "o.mmar") + " -C " + q(tmp / "o"), &out), 0) << out;
    EXPECT_EQ(mode(tmp / "o/d/suid"), 04755u);
    EXPECT_EQ(mode(tmp / "o/d/sgid"), 02755u);
  }
  ASSERT_EQ(mmar("extract --no-same-owner -f " + q(tmp / "o.mmar") + " -C " + q(tmp / "n"), &out), 0) << out;
  EXPECT_EQ(mode(tmp / "n/d/suid"), 0755u);
  EXPECT_EQ(mode(tmp / "n/d/sgid"), 0755u);
}

// A program whose PT_INTERP names a FIFO: exec says so at once instead of
// waiting forever in open() for a writer.
TEST(Cli, ExecRefusesAFifoInterpreter) {
  const std::string ld = "/lib64/ld-linux-x86-64.so.2";
  auto bytes = test::read_file("/bin/true");
  std::string text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  const size_t at = text.find(ld + std::string(1, '\0'));
  if (at == std::string::npos) GTEST_SKIP() << "/bin/true has no " << ld << " interpreter";
  TempDir tmp;
  // A relative path of the same length, resolved from the working directory.
  const std::string fifo = "./" + std::string(ld.size() - 2, 'f');
  std::memcpy(bytes.data() + at, fifo.data(), fifo.size());
  ASSERT_EQ(::mkdir((tmp / "src").c_str(), 0755), 0);
  test::write_file(tmp / "src/prog", bytes, 0755);
  ASSERT_EQ(::mkfifo((tmp / fifo.substr(2)).c_str(), 0644), 0);
  std::string out;
  ASSERT_EQ(mmar("create --compress none -f " + q(tmp / "a.mmar") + " -C " + q(tmp / "src") + " prog", &out), 0)
      << out;
  // timeout: without the fix this waits forever; 124 then fails the test.
  EXPECT_EQ(test::run("cd " + q(tmp.path()) + " && timeout 60 " + kMmar + " exec a.mmar:prog 2>&1", &out), 1) << out;
  EXPECT_NE(out.find("interpreter " + fifo + ": not a regular file"), std::string::npos) << out;
}

// Names with control bytes cannot spoof text output: escaped like GNU tar
// in list, list -l, extract -v and error messages; --json stays valid JSON,
// also for a name that is not UTF-8 (its exact bytes in name_base64).
TEST(Cli, NamesAreEscapedInTextAndJson) {
  TempDir tmp;
  std::string src = tmp / "src";
  ASSERT_EQ(::mkdir(src.c_str(), 0755), 0);
  const std::string evil = "a\nb\x1b[31m";
  const std::string latin1 = "caf\xe9\\";
  test::write_file(src + "/" + evil, test::to_bytes("x"));
  test::write_file(src + "/" + latin1, test::to_bytes("y"));
  test::write_file(src + "/ok-\xc3\xa9", test::to_bytes("z"));
  std::string out;
  ASSERT_EQ(mmar("create -f " + q(tmp / "a.mmar") + " -C " + q(src) + " .", &out), 0) << out;
  ASSERT_EQ(test::run(kMmar + " list " + q(tmp / "a.mmar"), &out), 0);
  EXPECT_EQ(out, "a\\nb\\033[31m\ncaf\\351\\\\\nok-\xc3\xa9\n");
  ASSERT_EQ(test::run(kMmar + " list -l " + q(tmp / "a.mmar"), &out), 0);
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << out;
  EXPECT_NE(out.find(" a\\nb\\033[31m\n"), std::string::npos) << out;
  ASSERT_EQ(test::run(kMmar + " extract -v -f " + q(tmp / "a.mmar") + " -C " + q(tmp / "x"), &out), 0);
  EXPECT_EQ(out, "a\\nb\\033[31m\ncaf\\351\\\\\nok-\xc3\xa9\n");
  EXPECT_EQ(test::run(kMmar + " cat " + q(tmp / "a.mmar") + " " + q("no\nsuch\x1b[2J") + " 2>&1 >/dev/null", &out), 1);
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_NE(out.find("no\\nsuch\\033[2J"), std::string::npos) << out;

  // JSON: parsed by Python; names as written, the Latin-1 one with its bytes.
  test::write_file(tmp / "check.py", test::to_bytes(R"(import base64, json, sys
members = json.load(sys.stdin)
names = [m["name"] for m in members]
assert names == ["a\nb\x1b[31m", "caf\u00e9\\", "ok-\u00e9"], names
assert "name_base64" not in members[0] and "name_base64" not in members[2]
assert base64.b64decode(members[1]["name_base64"]) == b"caf\xe9\\", members[1]
print("ok")
)"));
  ASSERT_EQ(test::run(kMmar + " list --json " + q(tmp / "a.mmar") + " | python3 " + q(tmp / "check.py") + " 2>&1", &out),
            0)
      << out;
  EXPECT_EQ(out, "ok\n");
}

// Writes `total` bytes of `fill` after `head` to fd, stopping at EPIPE.
void feed(int fd, const std::vector<std::byte>& head, uint64_t total) {
  if (::write(fd, head.data(), head.size()) != static_cast<ssize_t>(head.size())) return;
  std::vector<std::byte> zeros(1 << 20);
  for (uint64_t done = head.size(); done < total; done += zeros.size()) {
    if (::write(fd, zeros.data(), zeros.size()) < 0) return;
  }
}

TEST(Cli, StdinStreamsWithBoundedMemory) {
  const long kRssLimitKiB = test::rss_limit_kib(kMmar, 64 << 10);  // far below the 200 MiB fed
  constexpr uint64_t k200M = uint64_t{200} << 20;
  TempDir tmp;
  // Not an archive: refused from its first bytes.
  auto r = test::run_child({kMmar, "list", "-f", "-"}, [&](int fd) { feed(fd, {}, k200M); });
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "mmar: <stdin>: not an mmar or CTF archive (bad magic); standard input must hold an archive\n");
  EXPECT_LT(r.max_rss_kib, kRssLimitKiB) << "peak RSS " << r.max_rss_kib << " KiB";

  // An archive's header followed by 200 MiB: copied to a temporary file,
  // not memory; the index it points at is then nonsense.
  test::write_file(tmp / "x", test::to_bytes(std::string(10000, 'x')));
  ASSERT_EQ(mmar("create -f " + q(tmp / "a.mmar") + " -C " + q(tmp.path()) + " x"), 0);
  auto archive = test::read_file(tmp / "a.mmar");
  std::vector<std::byte> header(archive.begin(), archive.begin() + 128);
  r = test::run_child({kMmar, "list", "-f", "-"}, [&](int fd) { feed(fd, header, k200M); });
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.err.rfind("mmar: <stdin>: ", 0), 0u) << r.err;
  EXPECT_LT(r.max_rss_kib, kRssLimitKiB) << "peak RSS " << r.max_rss_kib << " KiB";

  // A real archive through a pipe still lists and reads.
  r = test::run_child({kMmar, "list", "-f", "-"}, [&](int fd) { feed(fd, archive, archive.size()); });
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "x\n");
  r = test::run_child({kMmar, "cat", "-f", "-", "x"}, [&](int fd) { feed(fd, archive, archive.size()); });
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, std::string(10000, 'x'));
  // Too short to be anything.
  r = test::run_child({kMmar, "list", "-f", "-"}, [&](int fd) { feed(fd, test::to_bytes("tiny"), 4); });
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "mmar: <stdin>: not an mmar or CTF archive (4 bytes); standard input must hold an archive\n");
}

}  // namespace
// No silent success: extra arguments are usage errors, another archive
// format is named, the archive can go to standard output, and btf find
// prints every type of a name.
TEST(Cli, NoSilentSuccess) {
  TempDir tmp;
  std::string out;
  test::write_file(tmp / "f", test::to_bytes("hello\n"));
  ASSERT_EQ(mmar("create -f " + q(tmp / "a.mmar") + " -C " + q(tmp.path()) + " f", &out), 0) << out;
  for (const char* verb : {"verify", "info", "compact"}) {
    EXPECT_EQ(mmar(std::string(verb) + " " + q(tmp / "a.mmar") + " " + q(tmp / "a.mmar"), &out), 2) << verb;
    EXPECT_NE(out.find("unexpected argument"), std::string::npos) << out;
  }
  // A tar where an archive is expected: named, with the conversion; a
  // text file only with --plain.
  ASSERT_EQ(test::run("tar -C " + q(tmp.path()) + " -cf " + q(tmp / "t.tar") + " f"), 0);
  for (const char* verb : {"verify", "list", "info", "extract", "cat"}) {
    EXPECT_EQ(mmar(std::string(verb) + " " + q(tmp / "t.tar") + (std::string(verb) == "cat" ? " f" : ""), &out), 1)
        << verb;
    EXPECT_NE(out.find("t.tar: a tar archive, not an mmar archive (convert: mmar create -f OUT.mmar --from "),
              std::string::npos)
        << out;
  }
  // A squashfs image: libarchive cannot read it, so the hint unpacks it
  // with unsquashfs, and the hint, run as given, makes the archive.
  ASSERT_EQ(test::run("mksquashfs " + q(tmp / "f") + " " + q(tmp / "t.sqfs") + " -quiet -no-progress >/dev/null"), 0);
  EXPECT_EQ(mmar("verify " + q(tmp / "t.sqfs"), &out), 1);
  const std::string hint = "(convert: unsquashfs -d DIR " + tmp / "t.sqfs" + " && mmar create -f OUT.mmar -C DIR .)";
  ASSERT_NE(out.find(hint), std::string::npos) << out;
  // create --from says the same (libarchive does not read it).
  EXPECT_EQ(mmar("create -f " + q(tmp / "sq0.mmar") + " --from " + q(tmp / "t.sqfs"), &out), 1);
  EXPECT_NE(out.find(": a squashfs image " + hint), std::string::npos) << out;
  std::string cmd = hint.substr(10, hint.size() - 11);
  for (size_t at; (at = cmd.find("DIR")) != std::string::npos;) cmd.replace(at, 3, tmp / "sq");
  cmd.replace(cmd.find("OUT.mmar"), 8, tmp / "sq.mmar");
  cmd.replace(cmd.find("mmar create"), 4, kMmar);
  ASSERT_EQ(test::run(cmd + " >/dev/null 2>&1"), 0) << cmd;
  ASSERT_EQ(mmar("cat " + q(tmp / "sq.mmar") + " f", &out), 0) << out;
  EXPECT_EQ(out, "hello\n");
  EXPECT_EQ(test::run(kMmar + " list - < " + q(tmp / "t.tar") + " 2>&1", &out), 1);
  EXPECT_NE(out.find("<stdin>: a tar archive"), std::string::npos) << out;
  EXPECT_EQ(test::run("cat " + q(tmp / "t.tar") + " | " + kMmar + " list - 2>&1", &out), 1);
  EXPECT_NE(out.find("<stdin>: a tar archive"), std::string::npos) << out;
  EXPECT_EQ(mmar("verify " + q(tmp / "f"), &out), 1);
  EXPECT_NE(out.find("--plain"), std::string::npos) << out;
  ASSERT_EQ(mmar("cat --plain " + q(tmp / "f") + " f", &out), 0);
  EXPECT_EQ(out, "hello\n");
  // Only the verbs that take --plain suggest it: export takes it too; mount
  // and compact refuse a plain file, and say nothing of --plain.
  ASSERT_EQ(mmar("export " + q(tmp / "f") + " -o " + q(tmp / "f.tar"), &out), 1);
  EXPECT_NE(out.find("--plain opens any file"), std::string::npos) << out;
  ASSERT_EQ(mmar("export --plain " + q(tmp / "f") + " -o " + q(tmp / "f.tar"), &out), 0) << out;
  ASSERT_EQ(test::run("tar -xOf " + q(tmp / "f.tar") + " f", &out), 0);
  EXPECT_EQ(out, "hello\n");
  EXPECT_EQ(mmar("compact " + q(tmp / "f"), &out), 1);
  EXPECT_NE(out.find("not an archive"), std::string::npos) << out;
  EXPECT_EQ(out.find("--plain"), std::string::npos) << out;
  if (mmar("mount --help") == 0) {
    ASSERT_EQ(::mkdir((tmp / "m4").c_str(), 0755), 0);
    EXPECT_EQ(mmar("mount " + q(tmp / "f") + " " + q(tmp / "m4"), &out), 1);
    EXPECT_NE(out.find("not an archive"), std::string::npos) << out;
    EXPECT_EQ(out.find("--plain"), std::string::npos) << out;
  }

  // create -f -: the archive on standard output, never a file named '-'.
  ASSERT_EQ(test::run("cd " + q(tmp.path()) + " && " + kMmar + " create -f - f --stats 2>" + q(tmp / "stats") +
                      " | " + kMmar + " cat - f", &out),
            0);
  EXPECT_EQ(out, "hello\n");
  const auto stats = test::read_file(tmp / "stats");
  EXPECT_NE(std::string(reinterpret_cast<const char*>(stats.data()), stats.size()).find("1 members"),
            std::string::npos);
  EXPECT_NE(::access((tmp / "-").c_str(), F_OK), 0);
  EXPECT_EQ(test::run("cd " + q(tmp.path()) + " && " + kMmar + " create -f - f 2>&1 >/dev/full", &out), 1);
  EXPECT_NE(out.find("standard output: No space left on device"), std::string::npos) << out;

  // btf find: every match. A struct and a typedef share a name.
  test::write_file(tmp / "dup.c", test::to_bytes("struct dup { int a; };\ntypedef struct dup dup;\ndup d;\n"));
  ASSERT_EQ(test::run("gcc -gbtf -c " + q(tmp / "dup.c") + " -o " + q(tmp / "dup.o")), 0);
  ASSERT_EQ(mmar("btf find " + q(tmp / "dup.o") + " dup", &out), 0) << out;
  EXPECT_NE(out.find("STRUCT 'dup'"), std::string::npos) << out;
  EXPECT_NE(out.find("TYPEDEF 'dup'"), std::string::npos) << out;
  ASSERT_EQ(mmar("btf find " + q(tmp / "dup.o") + " dup --kind typedef", &out), 0) << out;
  EXPECT_EQ(out.find("STRUCT"), std::string::npos) << out;
  EXPECT_EQ(mmar("btf find " + q(tmp / "dup.o") + " dup nosuch", &out), 1) << out;
  EXPECT_NE(out.find("no type named 'nosuch'"), std::string::npos) << out;
  // bpftool's syntax means what bpftool means; a stray word is an error.
  std::string ours, bpftool_syntax;
  ASSERT_EQ(test::run(kMmar + " btf dump " + q(tmp / "dup.o") + " --format c", &ours), 0);
  ASSERT_EQ(test::run(kMmar + " btf dump file " + q(tmp / "dup.o") + " format c", &bpftool_syntax), 0);
  EXPECT_EQ(ours, bpftool_syntax);
  EXPECT_NE(ours.find("typedef struct dup dup;"), std::string::npos) << ours;
  EXPECT_EQ(mmar("btf dump " + q(tmp / "dup.o") + " c", &out), 2);
  EXPECT_EQ(mmar("btf stats " + q(tmp / "dup.o") + " extra", &out), 2);
  // An option of another subcommand is refused, not ignored.
  EXPECT_EQ(mmar("btf stats " + q(tmp / "dup.o") + " --kind struct", &out), 2);
  EXPECT_NE(out.find("--kind does not apply to btf stats"), std::string::npos) << out;
  EXPECT_EQ(mmar("btf find " + q(tmp / "dup.o") + " dup --format c", &out), 2);
  // No FILE: the running kernel's, as bpftool.
  if (::access("/sys/kernel/btf/vmlinux", R_OK) == 0) {
    std::string implicit, explicit_file;
    ASSERT_EQ(test::run(kMmar + " btf dump | md5sum", &implicit), 0);
    ASSERT_EQ(test::run(kMmar + " btf dump /sys/kernel/btf/vmlinux | md5sum", &explicit_file), 0);
    EXPECT_EQ(implicit, explicit_file);
  }
}

// tar's habits: -v, --exclude/-X, -T, --mtime and SOURCE_DATE_EPOCH
// (byte-identical archives from the same tree), --strip-components, -k.
TEST(Cli, TarHabits) {
  TempDir tmp;
  const std::string src = tmp / "src";
  ASSERT_EQ(test::run("mkdir -p " + q(src + "/a/b") + " && echo 1 > " + q(src + "/a/b/f") + " && echo 2 > " +
                      q(src + "/a/g.o") + " && echo 3 > " + q(src + "/top") + " && echo 4 > " + q(src + "/skip.tmp")),
            0);
  std::string out;
  // -v lists what is added; --exclude and -X leave names out at any depth.
  test::write_file(tmp / "excl", test::to_bytes("*.tmp\n"));
  ASSERT_EQ(test::run(kMmar + " create -v -f " + q(tmp / "a.mmar") + " -C " + q(src) + " --exclude '*.o' -X " +
                          q(tmp / "excl") + " .",
                      &out),
            0);
  EXPECT_EQ(out, "a\na/b\na/b/f\ntop\n");
  ASSERT_EQ(mmar("list " + q(tmp / "a.mmar"), &out), 0);
  EXPECT_EQ(out, "a\na/b\na/b/f\ntop\n");
  // -T: the PATHs from a file.
  test::write_file(tmp / "list", test::to_bytes("a/b\ntop\n"));
  ASSERT_EQ(mmar("create -f " + q(tmp / "t.mmar") + " -C " + q(src) + " -T " + q(tmp / "list"), &out), 0) << out;
  ASSERT_EQ(mmar("list " + q(tmp / "t.mmar"), &out), 0);
  EXPECT_EQ(out, "a/b\na/b/f\ntop\n");
  // --mtime: the same tree gives the same bytes, whatever its times and
  // however many threads compress it.
  ASSERT_EQ(mmar("create -f " + q(tmp / "r1.mmar") + " -C " + q(src) + " --mtime @1000000000 .", &out), 0) << out;
  ASSERT_EQ(test::run("touch -d @1234567890 " + q(src + "/a/b/f") + " " + q(src + "/a")), 0);
  ASSERT_EQ(mmar("create -j 1 -f " + q(tmp / "r2.mmar") + " -C " + q(src) + " --mtime @1000000000 .", &out), 0);
  EXPECT_EQ(test::run("cmp " + q(tmp / "r1.mmar") + " " + q(tmp / "r2.mmar")), 0);
  EXPECT_EQ(mmar("create -f " + q(tmp / "bad.mmar") + " -C " + q(src) + " --mtime 'not a date' .", &out), 2);
  // SOURCE_DATE_EPOCH clamps newer times only.
  ASSERT_EQ(test::run("SOURCE_DATE_EPOCH=1300000000 " + kMmar + " create -f " + q(tmp / "s.mmar") + " -C " + q(src) +
                          " . && " + kMmar + " list --json " + q(tmp / "s.mmar") +
                          " | python3 -c 'import json,sys; print(sorted({m[\"mtime_ns\"] // 10**9 for m in "
                          "json.load(sys.stdin)}))'",
                      &out),
            0);
  EXPECT_EQ(out, "[1234567890, 1300000000]\n");
  // --strip-components; -k keeps what is there (an error), --skip-old-files silently.
  ASSERT_EQ(mmar("extract -f " + q(tmp / "a.mmar") + " -C " + q(tmp / "x") + " --strip-components 1", &out), 0) << out;
  ASSERT_EQ(test::run("cd " + q(tmp / "x") + " && find . | LC_ALL=C sort", &out), 0);
  EXPECT_EQ(out, ".\n./b\n./b/f\n");
  test::write_file(tmp / "x/b/f", test::to_bytes("mine\n"));
  EXPECT_EQ(mmar("extract -k -f " + q(tmp / "a.mmar") + " -C " + q(tmp / "x") + " --strip-components 1", &out), 1);
  EXPECT_NE(out.find("'b/f' exists already"), std::string::npos) << out;
  EXPECT_EQ(mmar("extract --skip-old-files -f " + q(tmp / "a.mmar") + " -C " + q(tmp / "x") + " --strip-components 1",
                 &out),
            0)
      << out;
  EXPECT_EQ(test::run("cat " + q(tmp / "x/b/f"), &out), 0);
  EXPECT_EQ(out, "mine\n");
}

}  // namespace mmar
