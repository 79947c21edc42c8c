// SPDX-License-Identifier: MIT
// AddressRange and AccessPolicy on their own: CIDR parsing and matching (IPv4, IPv6, IPv4-mapped
// peers), deny over allow, the per-client connection limit and its release, IPv6 clients
// grouped by prefix, the token bucket, and the bounded client table (eviction of the idle,
// refusal when every client is busy). The servers' use of them: access_serve_test.
#include <sockserv/access/access_policy.hpp>  // Test that header file is self-contained.

#include <sockserv/access/address_range.hpp>
#include <sockserv/address.hpp>

#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

namespace sockserv {
namespace {

Address v4(const char* host) { return Address::ipv4(host, 1234); }
Address v6(const char* host) { return Address::ipv6(host, 1234); }

TEST(AddressRangeTest, ParsesAndMatchesIPv4AndIPv6) {
  const auto net = AddressRange::parse("10.1.0.0/16");
  EXPECT_EQ(net.to_string(), "10.1.0.0/16");
  EXPECT_TRUE(net.contains(v4("10.1.200.3")));
  EXPECT_FALSE(net.contains(v4("10.2.0.1")));
  EXPECT_FALSE(net.contains(v6("2001:db8::1")));
  EXPECT_FALSE(net.contains(Address::unix_path("/tmp/x")));

  const auto host = AddressRange::parse("192.0.2.7");
  EXPECT_EQ(host.prefix_length(), 32);
  EXPECT_TRUE(host.contains(v4("192.0.2.7")));
  EXPECT_FALSE(host.contains(v4("192.0.2.8")));

  const auto six = AddressRange::parse("2001:db8:aa::/48");
  EXPECT_TRUE(six.contains(v6("2001:db8:aa:ffff::1")));
  EXPECT_FALSE(six.contains(v6("2001:db8:ab::1")));
  EXPECT_TRUE(AddressRange::parse("0.0.0.0/0").contains(v4("203.0.113.9")));
}

TEST(AddressRangeTest, AnIPv4MappedPeerMatchesIPv4RulesAndMappedRulesAreIPv4) {
  EXPECT_TRUE(AddressRange::parse("127.0.0.0/8").contains(v6("::ffff:127.0.0.5")));
  const auto mapped = AddressRange::parse("::ffff:192.0.2.0/120");
  EXPECT_EQ(mapped.family(), AF_INET);
  EXPECT_EQ(mapped.to_string(), "192.0.2.0/24");
  EXPECT_TRUE(mapped.contains(v4("192.0.2.44")));
}

TEST(AddressRangeTest, RefusesWhatIsNotARange) {
  for (const char* bad : {"", "10.0.0", "10.0.0.0/33", "::/129", "10.0.0.0/-1", "10.0.0.0/x",
                          "10.0.0.1/8", "host.example", "10.0.0.0/8/9"}) {
    EXPECT_THROW(AddressRange::parse(bad), std::invalid_argument) << bad;
  }
  try {
    AddressRange::parse("10.0.0.1/8");
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("bits are set past the prefix"), std::string::npos);
  }
}

TEST(AccessPolicyTest, DenyWinsOverAllowAndAnAllowListAdmitsOnlyItsRanges) {
  AccessPolicy policy;
  EXPECT_FALSE(policy.active());
  EXPECT_TRUE(policy.admit(v4("198.51.100.1")));
  policy.allow = {AddressRange::parse("10.0.0.0/8")};
  policy.deny = {AddressRange::parse("10.9.0.0/16")};
  EXPECT_TRUE(policy.active());
  EXPECT_TRUE(policy.admit(v4("10.1.1.1")));
  EXPECT_EQ(policy.admit(v4("10.9.1.1")).refusal(), Refusal::denied);
  EXPECT_EQ(policy.admit(v4("11.0.0.1")).refusal(), Refusal::denied);
  EXPECT_EQ(policy.admit(v6("::ffff:10.9.0.1")).refusal(), Refusal::denied);
  EXPECT_TRUE(policy.admit(Address::unix_path("/run/x.sock")));  // rules are for IP peers
}

TEST(AccessPolicyTest, PerClientConnectionsAreCountedUntilTheAdmissionEnds) {
  AccessPolicy policy;
  policy.limits.max_connections = 2;
  std::vector<Admission> held;
  held.push_back(policy.admit(v4("192.0.2.1")));
  held.push_back(policy.admit(v4("192.0.2.1")));
  ASSERT_TRUE(held[0] && held[1]);
  EXPECT_EQ(policy.admit(v4("192.0.2.1")).refusal(), Refusal::too_many_connections);
  EXPECT_TRUE(policy.admit(v4("192.0.2.2")));  // another client is not affected
  Admission moved = std::move(held[0]);        // moving keeps the place
  EXPECT_EQ(policy.admit(v4("192.0.2.1")).refusal(), Refusal::too_many_connections);
  moved = Admission();  // released
  EXPECT_TRUE(policy.admit(v4("192.0.2.1")));
  held.clear();
  EXPECT_EQ(policy.tracked_clients(), 0U);  // without a rate, a client with none open is gone
}

TEST(AccessPolicyTest, IPv6ClientsAreGroupedByPrefix) {
  AccessPolicy policy;
  policy.limits.max_connections = 1;
  const Admission first = policy.admit(v6("2001:db8:1:2::1"));
  ASSERT_TRUE(first);
  // The same /64: the same client.
  EXPECT_EQ(policy.admit(v6("2001:db8:1:2:ffff::9")).refusal(), Refusal::too_many_connections);
  EXPECT_TRUE(policy.admit(v6("2001:db8:1:3::1")));  // the next /64
  policy.limits.ipv6_prefix = 128;
  EXPECT_TRUE(policy.admit(v6("2001:db8:1:2::2")));  // one address, one client
}

TEST(AccessPolicyTest, TheRateIsATokenBucketWithABurst) {
  AccessPolicy policy;
  policy.limits.rate = 0.001;  // a token every 1,000 s: none comes back during the test
  policy.limits.burst = 3;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(policy.admit(v4("192.0.2.1"))) << i;
  EXPECT_EQ(policy.admit(v4("192.0.2.1")).refusal(), Refusal::too_fast);
  EXPECT_TRUE(policy.admit(v4("192.0.2.2")));
  // A client whose connections closed is remembered: its bucket is still empty.
  EXPECT_EQ(policy.admit(v4("192.0.2.1")).refusal(), Refusal::too_fast);
}

TEST(AccessPolicyTest, TheTableEvictsTheLongestIdleAndRefusesWhenEveryClientIsBusy) {
  AccessPolicy policy;
  policy.limits.rate = 0.001;
  policy.limits.burst = 1;
  policy.limits.table_size = 2;
  EXPECT_TRUE(policy.admit(v4("192.0.2.1")));  // idle at once (the admission ends here)
  EXPECT_TRUE(policy.admit(v4("192.0.2.2")));
  EXPECT_EQ(policy.admit(v4("192.0.2.1")).refusal(), Refusal::too_fast);
  EXPECT_TRUE(policy.admit(v4("192.0.2.3")));  // evicts .1, idle longest
  EXPECT_EQ(policy.tracked_clients(), 2U);
  EXPECT_TRUE(policy.admit(v4("192.0.2.1")));  // forgotten: a full bucket again

  AccessPolicy busy;
  busy.limits.max_connections = 5;
  busy.limits.rate = 100;
  busy.limits.table_size = 2;
  const Admission a = busy.admit(v4("192.0.2.1"));
  const Admission b = busy.admit(v4("192.0.2.2"));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(busy.admit(v4("192.0.2.3")).refusal(), Refusal::table_full);
}

TEST(AccessPolicyTest, ProxyHeadersAreBelievedFromTheConfiguredRangesOnly) {
  AccessPolicy policy;
  EXPECT_TRUE(policy.trusts_proxy(v4("203.0.113.5")));  // none configured: as before
  policy.proxy_from = {AddressRange::parse("127.0.0.2/32"), AddressRange::parse("::1/128")};
  EXPECT_TRUE(policy.trusts_proxy(v4("127.0.0.2")));
  EXPECT_TRUE(policy.trusts_proxy(v6("::1")));
  EXPECT_FALSE(policy.trusts_proxy(v4("127.0.0.3")));
}

}  // namespace
}  // namespace sockserv
