// SPDX-License-Identifier: MIT
// Address: the text forms (parse / to_string round trips), the refusals, name lookup, the
// getaddrinfo error category, equality and hashing, and v4-mapped unmapping.
#include <sockserv/address.hpp>  // Test that header file is self-contained.

#include <sockserv/error.hpp>
#include <sockserv/socket.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <netdb.h>
#include <netinet/in.h>

#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_set>

namespace sockserv {
namespace {

// ---- Round trips -------------------------------------------------------------------------------

TEST(AddressTest, ParsesAndPrintsIpv4HostPort) {
  const Address a = Address::parse("127.0.0.1:8080");
  EXPECT_EQ(a.family(), AF_INET);
  EXPECT_TRUE(a.is_inet());
  EXPECT_FALSE(a.is_unix());
  EXPECT_EQ(a.host(), "127.0.0.1");
  EXPECT_EQ(a.port(), 8080);
  EXPECT_EQ(a.size(), sizeof(sockaddr_in));
  EXPECT_EQ(a.to_string(), "127.0.0.1:8080");
  EXPECT_EQ(Address::parse(a.to_string()), a);
}

TEST(AddressTest, ParsesAndPrintsBracketedIpv6) {
  const Address a = Address::parse("[::1]:9999");
  EXPECT_EQ(a.family(), AF_INET6);
  EXPECT_EQ(a.host(), "::1");
  EXPECT_EQ(a.port(), 9999);
  EXPECT_EQ(a.scope_id(), 0u);
  EXPECT_EQ(a.to_string(), "[::1]:9999");
  EXPECT_EQ(Address::parse("[2001:db8::ff]:0").to_string(), "[2001:db8::ff]:0");
}

TEST(AddressTest, KeepsNumericScopeIdInTextForm) {
  const Address a = Address::parse("[fe80::1%1]:80");
  EXPECT_EQ(a.scope_id(), 1u);
  EXPECT_EQ(a.host(), "fe80::1%1");
  EXPECT_EQ(a.to_string(), "[fe80::1%1]:80");
  EXPECT_EQ(Address::parse(a.to_string()), a);
}

TEST(AddressTest, ResolvesInterfaceNameScopeToItsIndex) {
  // "lo" always exists; its index is printed numerically.
  const Address a = Address::parse("[fe80::1%lo]:80");
  EXPECT_NE(a.scope_id(), 0u);
  EXPECT_EQ(a.to_string(), "[fe80::1%" + std::to_string(a.scope_id()) + "]:80");
}

TEST(AddressTest, ParsesUnixPathWithAndWithoutPrefix) {
  const Address a = Address::parse("unix:/tmp/echo.sock");
  EXPECT_EQ(a.family(), AF_UNIX);
  EXPECT_TRUE(a.is_unix());
  EXPECT_FALSE(a.is_abstract());
  EXPECT_EQ(a.path(), "/tmp/echo.sock");
  EXPECT_EQ(a.host(), "");
  EXPECT_EQ(a.port(), 0);
  EXPECT_EQ(a.to_string(), "unix:/tmp/echo.sock");
  EXPECT_EQ(Address::parse("/tmp/echo.sock"), a);
  EXPECT_EQ(Address::unix_path("/tmp/echo.sock"), a);
}

TEST(AddressTest, ParsesAbstractNameWithoutTerminatingNul) {
  const Address a = Address::parse("unix:@sockserv-name");
  EXPECT_TRUE(a.is_abstract());
  EXPECT_EQ(a.path(), "sockserv-name");
  EXPECT_EQ(a.to_string(), "unix:@sockserv-name");
  EXPECT_EQ(a.size(), offsetof(sockaddr_un, sun_path) + 1 + 13);
  EXPECT_EQ(Address::abstract("sockserv-name"), a);
  EXPECT_NE(Address::unix_path("sockserv-name"), a);
}

TEST(AddressTest, EmptyHostMeansWildcard) {
  EXPECT_EQ(Address::parse(":80").to_string(), "0.0.0.0:80");
  EXPECT_EQ(Address::ipv6("", 80).to_string(), "[::]:80");
}

TEST(AddressTest, DefaultAddressIsUnspecified) {
  const Address a;
  EXPECT_EQ(a.family(), AF_UNSPEC);
  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(a.to_string(), "<unspecified>");
  std::ostringstream out;
  out << Address::parse("10.1.2.3:4");
  EXPECT_EQ(out.str(), "10.1.2.3:4");
}

TEST(AddressTest, CopiesKernelSockaddrAndRefusesOversizedOne) {
  const Address original = Address::parse("192.0.2.7:5");
  const Address copy(original.data(), original.size());
  EXPECT_EQ(copy, original);
  EXPECT_THROW(Address(original.data(), Address::capacity() + 1), std::invalid_argument);
}

TEST(AddressTest, PrintsUnnamedUnixSocketAsBarePrefix) {
  auto [a, b] = socketpair();
  EXPECT_EQ(a.getsockname().family(), AF_UNIX);
  EXPECT_EQ(a.getsockname().to_string(), "unix:");
}

// ---- Refusals ----------------------------------------------------------------------------------

class AddressInvalidTest : public testing::TestWithParam<const char*> {};

TEST_P(AddressInvalidTest, ParseThrowsInvalidArgumentNamingTheText) {
  const std::string text = GetParam();
  try {
    (void)Address::parse(text);
    FAIL() << "parse(\"" << text << "\") did not throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("invalid address"), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Inputs, AddressInvalidTest,
                         testing::Values("", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
                                         "127.0.0.1:-1", "127.0.0.1:80x", "1.2.3.256:80",
                                         "localhost:80", "::1:80", "[::1]80", "[::1",
                                         "[::1]:", "[127.0.0.1]:80", "[fe80::1%]:80",
                                         "[fe80::1%nosuchif0]:80", "unix:", "example.com",
                                         "[::g]:1"));

TEST(AddressTest, FactoriesRefuseWrongFamilyAndLongPaths) {
  EXPECT_THROW(Address::ipv4("::1", 1), std::invalid_argument);
  EXPECT_THROW(Address::ipv6("127.0.0.1", 1), std::invalid_argument);
  EXPECT_THROW(Address::unix_path(std::string(sizeof(sockaddr_un::sun_path), 'x')),
               std::invalid_argument);
  EXPECT_NO_THROW(Address::unix_path(std::string(sizeof(sockaddr_un::sun_path) - 1, 'x')));
  EXPECT_THROW(Address::abstract(std::string(sizeof(sockaddr_un::sun_path), 'x')),
               std::invalid_argument);
}

// ---- Lookup ------------------------------------------------------------------------------------

TEST(AddressTest, LookupResolvesLocalhostToLoopback) {
  const Address a = Address::lookup("localhost:9999");
  ASSERT_TRUE(a.is_inet());
  EXPECT_EQ(a.port(), 9999);
  EXPECT_EQ(a.host(), "127.0.0.1");  // IPv4 first, as Python's AF_INET clients resolve it
  EXPECT_EQ(Address::lookup("localhost:9999", SOCK_STREAM, AF_INET).to_string(), "127.0.0.1:9999");
}

TEST(AddressTest, HostPortConstructorReadsLikePythonTuple) {
  const Address numeric = {"127.0.0.1", 9999};  // Python: ("127.0.0.1", 9999)
  EXPECT_EQ(numeric, Address::parse("127.0.0.1:9999"));
  EXPECT_EQ(Address("", 80), Address::parse("0.0.0.0:80"));  // "" is the IPv4 wildcard
  EXPECT_EQ(Address("::1", 80), Address::parse("[::1]:80"));
  EXPECT_EQ(Address("fe80::1%1", 80).scope_id(), 1u);
  EXPECT_EQ(Address("localhost", 80), Address::parse("127.0.0.1:80"));  // IPv4 first
}

TEST(AddressTest, LookupPassesNumericAndUnixFormsThrough) {
  EXPECT_EQ(Address::lookup("[::1]:7"), Address::parse("[::1]:7"));
  EXPECT_EQ(Address::lookup("unix:@x"), Address::abstract("x"));
  EXPECT_EQ(Address::lookup("127.0.0.1:7", SOCK_DGRAM), Address::parse("127.0.0.1:7"));
  EXPECT_THROW((void)Address::lookup("localhost"), std::invalid_argument);
  EXPECT_THROW((void)Address::lookup("localhost:99999"), std::invalid_argument);
}

// Returns the gai code of the SocketError `f` throws; fails the test if it throws nothing.
template <class F>
int gai_code_of(F&& f) {
  try {
    f();
  } catch (const SocketError& e) {
    EXPECT_EQ(&e.code().category(), &gai_category()) << e.what();
    EXPECT_NE(std::string(e.what()).find("getaddrinfo"), std::string::npos) << e.what();
    return e.code().value();
  }
  ADD_FAILURE() << "nothing was thrown";
  return 0;
}

TEST(AddressTest, GetaddrinfoFailuresUseGaiCategory) {
  // Deterministic failures that need no DNS server.
  EXPECT_EQ(gai_code_of([] { getaddrinfo("localhost", "80", AF_UNSPEC, 0, 0, AI_NUMERICHOST); }),
            EAI_NONAME);
  EXPECT_EQ(gai_code_of([] { getaddrinfo("127.0.0.1", "no-such-service-xyz"); }), EAI_SERVICE);
  EXPECT_EQ(gai_code_of([] { getaddrinfo("127.0.0.1", "80", 12345); }), EAI_FAMILY);
  EXPECT_EQ(gai_code_of([] { (void)Address::lookup("localhost:80", SOCK_STREAM, 12345); }),
            EAI_FAMILY);
  EXPECT_EQ(gai_category().name(), std::string("getaddrinfo"));
  EXPECT_EQ(gai_category().message(EAI_NONAME), ::gai_strerror(EAI_NONAME));
}

TEST(AddressTest, GetaddrinfoReturnsEveryResult) {
  const auto results = getaddrinfo("127.0.0.1", "80", AF_INET, SOCK_STREAM);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].family, AF_INET);
  EXPECT_EQ(results[0].socket_type, SOCK_STREAM);
  EXPECT_EQ(results[0].address.to_string(), "127.0.0.1:80");
  // No host and no AI_PASSIVE: the loopback address(es).
  for (const auto& info : getaddrinfo("", "7", AF_UNSPEC, SOCK_STREAM)) {
    EXPECT_TRUE(info.address.host() == "127.0.0.1" || info.address.host() == "::1") << info.address;
  }
}

// ---- Equality, hashing, v4-mapped --------------------------------------------------------------

TEST(AddressTest, EqualAddressesHashEqually) {
  const Address a = Address::parse("127.0.0.1:80");
  const Address b = Address::ipv4("127.0.0.1", 80);
  EXPECT_EQ(a, b);
  EXPECT_EQ(std::hash<Address>{}(a), std::hash<Address>{}(b));
  EXPECT_NE(a, Address::parse("127.0.0.1:81"));
  EXPECT_NE(a, Address::parse("127.0.0.2:80"));
  EXPECT_NE(a, Address::parse("[::ffff:127.0.0.1]:80"));

  std::unordered_set<Address> set{a, b, Address::parse("[::1]:80"), Address::parse("unix:/x"),
                                  Address::parse("unix:@x")};
  EXPECT_EQ(set.size(), 4u);
  EXPECT_TRUE(set.contains(Address::unix_path("/x")));
}

TEST(AddressTest, KernelAddressEqualsParsedOne) {
  Socket s(AF_INET, SOCK_STREAM);
  s.bind(test::loopback4());
  const Address bound = s.getsockname();
  EXPECT_EQ(bound, Address::parse("127.0.0.1:" + std::to_string(bound.port())));
}

TEST(AddressTest, UnmapsV4MappedIpv6) {
  const Address mapped = Address::parse("[::ffff:127.0.0.1]:8080");
  EXPECT_TRUE(mapped.is_v4_mapped());
  const Address plain = mapped.unmapped();
  EXPECT_EQ(plain.family(), AF_INET);
  EXPECT_EQ(plain, Address::parse("127.0.0.1:8080"));
  EXPECT_FALSE(plain.is_v4_mapped());

  const Address v6 = Address::parse("[::1]:8080");
  EXPECT_FALSE(v6.is_v4_mapped());
  EXPECT_EQ(v6.unmapped(), v6);
  EXPECT_EQ(plain.unmapped(), plain);
  EXPECT_FALSE(Address::parse("unix:/x").is_v4_mapped());
}

}  // namespace
}  // namespace sockserv
