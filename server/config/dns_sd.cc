#include "server/config/dns_sd.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <sys/socket.h>

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/config/config.h"

namespace latency {
namespace {

constexpr int kMaxPort = 65535;
constexpr absl::string_view kWantFlag =
    "want srv:NAME, a:NAME[:PORT] or aaaa:NAME[:PORT]";

absl::string_view TypeName(v1::DnsRecordType type) {
  switch (type) {
    case v1::DNS_RECORD_TYPE_A:
      return "a";
    case v1::DNS_RECORD_TYPE_AAAA:
      return "aaaa";
    default:
      return "srv";
  }
}

bool IsSrv(const v1::DnsSdConfig& lookup) {
  return lookup.type() != v1::DNS_RECORD_TYPE_A &&
         lookup.type() != v1::DNS_RECORD_TYPE_AAAA;
}

// Checks what ValidateDnsSd checks; messages without the field prefix,
// `field` says which field is wrong ("name" or "port").
absl::Status CheckLookup(const v1::DnsSdConfig& lookup, std::string* field) {
  *field = "name";
  if (lookup.name().empty()) {
    return absl::InvalidArgumentError("empty name (required)");
  }
  if (!IsHostName(lookup.name())) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", lookup.name(),
                     "\" is not a DNS name (labels of 1-63 letters, digits, "
                     "'-' or '_', 253 characters in all)"));
  }
  *field = "port";
  if (lookup.has_port() && IsSrv(lookup)) {
    return absl::InvalidArgumentError(
        "SRV records carry their port: set one only for A and AAAA lookups");
  }
  if (lookup.has_port() && (lookup.port() < 1 || lookup.port() > kMaxPort)) {
    return absl::InvalidArgumentError(
        absl::StrCat("port ", lookup.port(), ": want 1-65535"));
  }
  return absl::OkStatus();
}

class SystemResolver final : public DnsResolver {
 public:
  absl::StatusOr<std::vector<std::string>> LookupAddresses(
      const std::string& name, int family) override {
    addrinfo hints{};
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;  // one entry per address
    addrinfo* found = nullptr;
    const int rc = getaddrinfo(name.c_str(), nullptr, &hints, &found);
    if (rc == EAI_NONAME || rc == EAI_NODATA) {
      return absl::NotFoundError("no such name");
    }
    if (rc != 0) return absl::UnavailableError(gai_strerror(rc));
    std::vector<std::string> addresses;
    for (const addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
      char text[INET6_ADDRSTRLEN] = {};
      const void* addr =
          ai->ai_family == AF_INET6
              ? static_cast<const void*>(
                    &reinterpret_cast<const sockaddr_in6*>(ai->ai_addr)
                         ->sin6_addr)
              : static_cast<const void*>(
                    &reinterpret_cast<const sockaddr_in*>(ai->ai_addr)
                         ->sin_addr);
      if (inet_ntop(ai->ai_family, addr, text, sizeof(text)) != nullptr) {
        addresses.emplace_back(text);
      }
    }
    freeaddrinfo(found);
    return addresses;
  }

  absl::StatusOr<std::vector<SrvRecord>> LookupSrv(
      const std::string& name) override {
    // A fresh resolver state per lookup: thread-safe, and it reads
    // /etc/resolv.conf as it is now.
    struct __res_state state {};
    if (res_ninit(&state) != 0) {
      res_nclose(&state);
      return absl::UnavailableError("cannot set up the resolver");
    }
    std::vector<unsigned char> answer(NS_MAXMSG);
    const int size = res_nquery(&state, name.c_str(), ns_c_in, ns_t_srv,
                                answer.data(), static_cast<int>(answer.size()));
    const int error = state.res_h_errno;
    res_nclose(&state);
    if (size < 0) {
      if (error == HOST_NOT_FOUND || error == NO_DATA) {
        return absl::NotFoundError(error == NO_DATA ? "no SRV records"
                                                    : "no such name");
      }
      return absl::UnavailableError(hstrerror(error));
    }
    return ParseSrvAnswer(answer.data(), static_cast<size_t>(size));
  }
};

}  // namespace

std::string DnsSdName(const v1::DnsSdConfig& lookup) {
  std::string name = absl::StrCat(TypeName(lookup.type()), ":", lookup.name());
  if (lookup.has_port()) absl::StrAppend(&name, ":", lookup.port());
  return name;
}

absl::Status ValidateDnsSd(absl::string_view what,
                           const v1::DnsSdConfig& lookup) {
  std::string field;
  absl::Status status = CheckLookup(lookup, &field);
  if (status.ok()) return status;
  return absl::InvalidArgumentError(
      absl::StrCat(what, ".", field, ": ", status.message()));
}

absl::StatusOr<v1::DnsSdConfig> ParseDnsSdFlag(absl::string_view value) {
  auto error = [value](absl::string_view message) {
    return absl::InvalidArgumentError(
        absl::StrCat("--dns_sd \"", value, "\": ", message));
  };
  const size_t colon = value.find(':');
  if (colon == absl::string_view::npos) return error(kWantFlag);
  const std::string type = absl::AsciiStrToLower(value.substr(0, colon));
  absl::string_view rest = value.substr(colon + 1);
  v1::DnsSdConfig lookup;
  if (type == "srv") {
    lookup.set_type(v1::DNS_RECORD_TYPE_SRV);
  } else if (type == "a") {
    lookup.set_type(v1::DNS_RECORD_TYPE_A);
  } else if (type == "aaaa") {
    lookup.set_type(v1::DNS_RECORD_TYPE_AAAA);
  } else {
    return error(kWantFlag);
  }
  if (const size_t port_at = rest.rfind(':');
      port_at != absl::string_view::npos) {
    absl::string_view port = rest.substr(port_at + 1);
    uint32_t number = 0;
    if (!absl::SimpleAtoi(port, &number) || number > kMaxPort) {
      return error(absl::StrCat("port \"", port, "\": want 1-65535"));
    }
    lookup.set_port(number);
    rest = rest.substr(0, port_at);
  }
  lookup.set_name(std::string(rest));
  std::string field;
  if (absl::Status status = CheckLookup(lookup, &field); !status.ok()) {
    return error(status.message());
  }
  return lookup;
}

absl::StatusOr<std::vector<SrvRecord>> ParseSrvAnswer(const unsigned char* msg,
                                                      size_t size) {
  ns_msg handle;
  if (ns_initparse(msg, static_cast<int>(size), &handle) != 0) {
    return absl::DataLossError(
        absl::StrCat("malformed DNS answer (", size, " bytes)"));
  }
  std::vector<SrvRecord> records;
  const int count = ns_msg_count(handle, ns_s_an);
  for (int i = 0; i < count; ++i) {
    ns_rr rr;
    if (ns_parserr(&handle, ns_s_an, i, &rr) != 0) {
      return absl::DataLossError(
          absl::StrCat("malformed DNS answer: record ", i + 1));
    }
    if (ns_rr_type(rr) != ns_t_srv) continue;  // e.g. a CNAME on the way
    const unsigned char* rdata = ns_rr_rdata(rr);
    const size_t length = ns_rr_rdlen(rr);
    char host[NS_MAXDNAME] = {};
    // Priority, weight and port (2 bytes each), then the target's name,
    // which may point anywhere earlier in the message.
    if (length < 7 || dn_expand(ns_msg_base(handle), ns_msg_end(handle),
                                rdata + 6, host, sizeof(host)) < 0) {
      return absl::DataLossError(
          absl::StrCat("malformed DNS answer: SRV record ", i + 1));
    }
    SrvRecord record;
    record.priority = ns_get16(rdata);
    record.weight = ns_get16(rdata + 2);
    record.port = ns_get16(rdata + 4);
    record.host = host;
    if (absl::EndsWith(record.host, ".")) record.host.pop_back();
    // Target "." (empty): "the service is decidedly not available here".
    if (record.host.empty()) continue;
    records.push_back(std::move(record));
  }
  return records;
}

DnsResolver& RealDnsResolver() {
  static SystemResolver resolver;
  return resolver;
}

DnsDiscovery::DnsDiscovery(std::vector<v1::DnsSdConfig> lookups,
                           DnsResolver* resolver)
    : lookups_(std::move(lookups)),
      resolver_(resolver),
      good_(lookups_.size()) {}

absl::StatusOr<DnsDiscovery::Answer> DnsDiscovery::Lookup(
    const v1::DnsSdConfig& lookup) {
  Answer answer;
  if (IsSrv(lookup)) {
    absl::StatusOr<std::vector<SrvRecord>> records =
        resolver_->LookupSrv(lookup.name());
    if (!records.ok()) return records.status();
    for (const SrvRecord& record : *records) {
      answer.emplace_back(record.host, record.port);
    }
  } else {
    absl::StatusOr<std::vector<std::string>> addresses =
        resolver_->LookupAddresses(
            lookup.name(),
            lookup.type() == v1::DNS_RECORD_TYPE_AAAA ? AF_INET6 : AF_INET);
    if (!addresses.ok()) return addresses.status();
    const uint16_t port = lookup.has_port()
                              ? static_cast<uint16_t>(lookup.port())
                              : kDefaultGrpcPort;
    for (const std::string& address : *addresses) {
      answer.emplace_back(address, port);
    }
  }
  std::sort(answer.begin(), answer.end());
  answer.erase(std::unique(answer.begin(), answer.end()), answer.end());
  return answer;
}

DnsDiscovery::Result DnsDiscovery::Refresh() {
  Result result;
  bool same = refreshed_;
  for (size_t i = 0; i < lookups_.size(); ++i) {
    const v1::DnsSdConfig& lookup = lookups_[i];
    const std::string what = absl::StrCat("dns_sd ", DnsSdName(lookup));
    absl::StatusOr<Answer> answer = Lookup(lookup);
    if (absl::IsNotFound(answer.status())) {
      result.errors.push_back(
          absl::StrCat(what, ": no records (", answer.status().message(), ")"));
      answer = Answer();
    }
    if (answer.ok()) {
      same = same && good_[i] == *answer;
      good_[i] = *std::move(answer);
    } else {
      result.errors.push_back(absl::StrCat(
          what, ": lookup failed: ", answer.status().message(),
          good_[i].has_value() ? absl::StrCat(" (keeping its last ",
                                              good_[i]->size(), " targets)")
                               : ""));
    }
    if (!good_[i].has_value()) continue;
    // A host found with several ports (several agents) is named with the
    // port, so that each has its own name.
    std::map<absl::string_view, int> per_host;
    for (const auto& [host, port] : *good_[i]) ++per_host[host];
    for (const auto& [host, port] : *good_[i]) {
      DiscoveredTarget& found = result.targets.emplace_back();
      found.target.set_host(host);
      found.target.set_name(per_host[host] > 1 ? absl::StrCat(host, ":", port)
                                               : host);
      if (port != kDefaultGrpcPort) found.target.set_grpc_port(port);
      *found.target.mutable_labels() = lookup.labels();
      found.origin = absl::StrCat(what, ": \"", found.target.name(), "\"");
    }
  }
  result.changed = !same;
  refreshed_ = true;
  return result;
}

}  // namespace latency
