// SPDX-License-Identifier: BSD-2-Clause
// A small program against libmmar's public API only: write an archive of a
// few members and a BTF blob, open it, find, read whole, read a range,
// stream with seek, verify, and look a type up in the BTF member.
//   consumer DIR     (a scratch directory; exit 0 when everything agrees)
#include <mmar/archive.h>
#include <mmar/btf.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

int failed(const char* what, const mmar::Error& e) {
  std::fprintf(stderr, "consumer: %s: %s\n", what, e.message().c_str());
  return 1;
}

std::vector<std::byte> bytes_of(const std::string& s) {
  std::vector<std::byte> v(s.size());
  std::memcpy(v.data(), s.data(), s.size());
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer DIR\n");
    return 2;
  }
  const std::string path = std::string(argv[1]) + "/consumer.mmar";

  // A BTF blob built in memory: struct point { int x; int y; }.
  mmar::BtfBuilder b;
  auto int_id = b.add_int("int", 4, 1);
  auto point = b.add_struct("point", 8);
  if (!int_id.ok() || !point.ok() || !b.add_field("x", *int_id, 0).ok() || !b.add_field("y", *int_id, 32).ok()) {
    std::fprintf(stderr, "consumer: building BTF failed\n");
    return 1;
  }

  std::string big;
  for (int i = 0; i < 100000; ++i) big += "line " + std::to_string(i) + "\n";
  mmar::Writer w;
  if (auto r = w.add_bytes("docs/big.txt", bytes_of(big)); !r.ok()) return failed("add", r.error());
  if (auto r = w.add_bytes("hello.txt", bytes_of("hello, world\n")); !r.ok()) return failed("add", r.error());
  if (auto r = w.add_bytes("types.btf", b.write()); !r.ok()) return failed("add", r.error());
  auto stats = w.write(path);
  if (!stats.ok()) return failed("write", stats.error());

  auto a = mmar::Archive::open(path);
  if (!a.ok()) return failed("open", a.error());
  auto hello = a->read("hello.txt");
  if (!hello.ok()) return failed("read", hello.error());
  if (std::string(reinterpret_cast<const char*>(hello->data()), hello->size()) != "hello, world\n") {
    std::fprintf(stderr, "consumer: hello.txt has the wrong bytes\n");
    return 1;
  }
  auto m = a->find("docs/big.txt");
  if (!m.ok()) return failed("find", m.error());
  const uint64_t at = big.find("line 77777\n");
  auto range = a->read_bytes(*m, at, 11);
  if (!range.ok()) return failed("read_bytes", range.error());
  if (std::memcmp(range->data(), "line 77777\n", 11) != 0) {
    std::fprintf(stderr, "consumer: range read has the wrong bytes\n");
    return 1;
  }
  mmar::MemberReader reader(*a, *m);
  reader.seek(at);
  char buf[11];
  auto got = reader.read(buf, sizeof buf);
  if (!got.ok()) return failed("MemberReader", got.error());
  if (*got != sizeof buf || std::memcmp(buf, "line 77777\n", 11) != 0) {
    std::fprintf(stderr, "consumer: streamed read has the wrong bytes\n");
    return 1;
  }
  auto problems = a->verify();
  if (!problems.ok()) return failed("verify", problems.error());
  if (!problems->empty()) {
    std::fprintf(stderr, "consumer: verify: %s\n", problems->front().message.c_str());
    return 1;
  }
  auto btf_bytes = a->read("types.btf");
  if (!btf_bytes.ok()) return failed("read", btf_bytes.error());
  auto btf = mmar::Btf::parse(*btf_bytes, "types.btf");
  if (!btf.ok()) return failed("Btf::parse", btf.error());
  auto t = btf->find("point", mmar::BtfKind::struct_);
  if (!t.ok()) return failed("Btf::find", t.error());
  std::printf("consumer: %u members, %s %u bytes (id %u), %llu-byte archive\n", a->size(),
              mmar::btf_kind_name(t->kind()), t->size(), t->id(),
              static_cast<unsigned long long>(stats->archive_bytes));
  return t->size() == 8 ? 0 : 1;
}
