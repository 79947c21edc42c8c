// SPDX-License-Identifier: MIT
#include "support/tls_certs.hpp"

#include "support/test_support.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace sockserv::test {
namespace {

using namespace std::chrono_literals;

void openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto result = run_command(argv, {}, 20s);
  if (result.exit_code != 0 || result.timed_out) {
    std::string line;
    for (const auto& a : argv) line += a + " ";
    throw std::runtime_error("`" + line + "` failed (" + std::to_string(result.exit_code) +
                             "): " + result.err);
  }
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.flush()) throw std::runtime_error("cannot write " + path);
}

// Distinct serial numbers for every certificate one CA signs (in this process and across tests).
std::string next_serial() {
  static std::atomic<unsigned> counter{static_cast<unsigned>(
      (std::chrono::steady_clock::now().time_since_epoch().count() ^ ::getpid()) & 0xffffff)};
  return std::to_string(100000 + counter.fetch_add(1));
}

const std::vector<std::string> kEcKey{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                      "-nodes"};

// A key and a certificate signed by the CA, with the X.509v3 extensions in `extensions`.
void issue(const TlsCerts& certs, const std::string& subject, const std::string& extensions,
           const std::string& cert_path, const std::string& key_path) {
  const std::string base = cert_path + ".tmp";
  std::vector<std::string> req{"req", "-new"};
  req.insert(req.end(), kEcKey.begin(), kEcKey.end());
  req.insert(req.end(), {"-keyout", base + ".key", "-out", base + ".csr", "-subj", subject});
  openssl(req);
  write_file(base + ".ext", extensions);
  openssl({"x509", "-req", "-in", base + ".csr", "-CA", certs.ca_cert, "-CAkey", certs.ca_key,
           "-set_serial", next_serial(), "-days", "3", "-extfile", base + ".ext", "-out",
           base + ".pem"});
  // rename(): a server reading the files (SIGHUP) sees the old pair or the new one, never half.
  if (std::rename((base + ".key").c_str(), key_path.c_str()) != 0 ||
      std::rename((base + ".pem").c_str(), cert_path.c_str()) != 0) {
    throw std::runtime_error("cannot rename the new certificate into " + cert_path);
  }
  std::remove((base + ".csr").c_str());
  std::remove((base + ".ext").c_str());
}

const char* const kServerExtensions =
    "basicConstraints=CA:FALSE\n"
    "keyUsage=critical,digitalSignature\n"
    "extendedKeyUsage=serverAuth\n"
    "subjectKeyIdentifier=hash\n"
    "authorityKeyIdentifier=keyid\n";

}  // namespace

bool have_openssl() { return have_program("openssl"); }

TlsCerts make_tls_certs(const std::string& dir) {
  TlsCerts c;
  c.dir = dir;
  auto at = [&](const char* name) { return dir + "/" + name; };
  c.ca_cert = at("ca.pem");
  c.ca_key = at("ca.key");
  c.server_cert = at("server.pem");
  c.server_key = at("server.key");
  c.other_cert = at("other.pem");
  c.other_key = at("other.key");
  c.client_cert = at("client.pem");
  c.client_key = at("client.key");
  c.untrusted_cert = at("untrusted.pem");
  c.untrusted_key = at("untrusted.key");

  std::vector<std::string> ca{"req", "-x509"};
  ca.insert(ca.end(), kEcKey.begin(), kEcKey.end());
  ca.insert(ca.end(), {"-keyout", c.ca_key, "-out", c.ca_cert, "-days", "3", "-subj",
                       "/O=sockserv tests/CN=sockserv test CA", "-addext",
                       "basicConstraints=critical,CA:TRUE", "-addext",
                       "keyUsage=critical,keyCertSign,cRLSign"});
  openssl(ca);
  issue_server_cert(c, kServerCN, c.server_cert, c.server_key);
  issue(c, std::string("/CN=") + kOtherCN,
        std::string(kServerExtensions) + "subjectAltName=DNS:" + kOtherCN + "\n", c.other_cert,
        c.other_key);
  issue(c, std::string("/O=sockserv tests/CN=") + kClientCN,
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=clientAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n",
        c.client_cert, c.client_key);
  std::vector<std::string> untrusted{"req", "-x509"};
  untrusted.insert(untrusted.end(), kEcKey.begin(), kEcKey.end());
  untrusted.insert(untrusted.end(),
                   {"-keyout", c.untrusted_key, "-out", c.untrusted_cert, "-days", "3", "-subj",
                    "/CN=untrusted client", "-addext", "subjectAltName=DNS:localhost"});
  openssl(untrusted);
  return c;
}

void issue_server_cert(const TlsCerts& certs, const std::string& cn, const std::string& cert_path,
                       const std::string& key_path) {
  issue(certs, "/CN=" + cn,
        std::string(kServerExtensions) + "subjectAltName=DNS:localhost,IP:127.0.0.1\n", cert_path,
        key_path);
}

void write_ticket_keys(const std::string& path, int count) {
  std::random_device random;
  std::string bytes;
  for (int i = 0; i < 80 * count; ++i) bytes += static_cast<char>(random() & 0xff);
  write_file(path, bytes);
}

}  // namespace sockserv::test
