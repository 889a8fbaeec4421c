#include "tests/testing/test_pki.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "tests/testing/subprocess.h"

namespace latency::testing {
namespace {

bool Openssl(std::vector<std::string> args, std::string* error) {
  args.insert(args.begin(), "openssl");
  CommandResult result = RunCommand(args, absl::Seconds(60));
  if (result.exit_code == 0) return true;
  *error += "openssl";
  for (size_t i = 1; i < args.size(); ++i) *error += " " + args[i];
  *error += " failed:\n" + result.output;
  return false;
}

bool MakeCa(const TestPki& pki, const std::string& name, std::string* error) {
  return Openssl(
      {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
       "-nodes", "-days", "2", "-subj", "/CN=" + name, "-keyout", pki.Key(name),
       "-out", pki.Cert(name)},
      error);
}

bool MakeLeaf(const TestPki& pki, const std::string& name,
              const std::string& cn, const std::string& ca,
              const std::string& serial, const std::string& san,
              std::string* error) {
  std::string csr = pki.Path(name + ".csr");
  return Openssl({"req", "-new", "-newkey", "ec", "-pkeyopt",
                  "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=" + cn,
                  "-addext", "subjectAltName=" + san, "-keyout", pki.Key(name),
                  "-out", csr},
                 error) &&
         Openssl({"x509", "-req", "-in", csr, "-CA", pki.Cert(ca), "-CAkey",
                  pki.Key(ca), "-set_serial", serial, "-days", "2",
                  "-copy_extensions", "copyall", "-out", pki.Cert(name)},
                 error);
}

}  // namespace

std::optional<TestPki> TestPki::Create(std::string* error) {
  char dir_template[] = "/tmp/latency-pki-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) {
    *error = "mkdtemp failed";
    return std::nullopt;
  }
  TestPki pki{std::string(dir_template)};
  const std::string kServerSan = "IP:127.0.0.1,DNS:localhost";
  bool ok =
      MakeCa(pki, "ca", error) && MakeCa(pki, "wrongca", error) &&
      MakeLeaf(pki, "server", "server-1", "ca", "0x1001", kServerSan, error) &&
      MakeLeaf(pki, "server2", "server-2", "ca", "0x1002", kServerSan, error) &&
      MakeLeaf(pki, "client", "client", "ca", "0x2001", "DNS:client", error) &&
      MakeLeaf(pki, "rogue", "rogue", "wrongca", "0x3001", "DNS:rogue", error);
  if (!ok) return std::nullopt;
  return pki;
}

TestPki::~TestPki() {
  if (dir_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) return false;
  }
  std::error_code error;
  // Owner-only, as key and token files should be.
  std::filesystem::permissions(
      temp,
      std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
      error);
  std::filesystem::rename(temp, path, error);
  return !error;
}

bool CopyFile(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  if (!in) return false;
  std::ostringstream text;
  text << in.rdbuf();
  return WriteFile(to, text.str());
}

}  // namespace latency::testing
