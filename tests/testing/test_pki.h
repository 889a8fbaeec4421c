#ifndef LATENCY_TESTS_TESTING_TEST_PKI_H_
#define LATENCY_TESTS_TESTING_TEST_PKI_H_

#include <optional>
#include <string>

namespace latency::testing {

// TestPki is a throwaway certificate authority made at test time with the
// openssl CLI (EC P-256, valid two days) in a fresh temp directory, removed
// by the destructor. Files, each NAME.crt + NAME.key:
//   ca        the trusted CA
//   wrongca   an unrelated CA
//   server    CN=server-1, serial 1001, SAN IP:127.0.0.1 DNS:localhost (ca)
//   server2   CN=server-2, serial 1002, same SANs (ca): the rotated cert
//   client    CN=client, serial 2001 (ca)
//   rogue     CN=rogue, serial 3001 (wrongca): a client the server must
//             refuse
class TestPki {
 public:
  // Creates the directory and every file; nullopt with the openssl output
  // in `error` on failure.
  static std::optional<TestPki> Create(std::string* error);

  TestPki(TestPki&& other) noexcept : dir_(std::move(other.dir_)) {
    other.dir_.clear();
  }
  TestPki& operator=(TestPki&&) = delete;
  ~TestPki();

  const std::string& dir() const { return dir_; }
  std::string Cert(const std::string& name) const {
    return dir_ + "/" + name + ".crt";
  }
  std::string Key(const std::string& name) const {
    return dir_ + "/" + name + ".key";
  }
  // A path in the directory for the test's own files.
  std::string Path(const std::string& file) const { return dir_ + "/" + file; }

 private:
  explicit TestPki(std::string dir) : dir_(std::move(dir)) {}

  std::string dir_;
};

// Copies `from` to `to` as WriteFile does; false on failure.
bool CopyFile(const std::string& from, const std::string& to);

// Writes `text` to `path`, mode 0600 (atomically via a rename); false on
// failure.
bool WriteFile(const std::string& path, const std::string& text);

}  // namespace latency::testing

#endif  // LATENCY_TESTS_TESTING_TEST_PKI_H_
