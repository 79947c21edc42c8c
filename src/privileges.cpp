// SPDX-License-Identifier: MIT
// lookup_user and drop_privileges.
#include <sockserv/privileges.hpp>

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace sockserv {

std::string UserGroup::to_string() const {
  return "uid=" + std::to_string(uid) + " gid=" + std::to_string(gid);
}

namespace {

std::optional<unsigned long> as_number(std::string_view text) {
  unsigned long value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || ptr != end) return std::nullopt;
  return value;
}

// The *_r lookups with a buffer that grows on ERANGE (bounded: 1 MiB).
template <class Entry, class Lookup>
std::optional<Entry> lookup(Lookup call) {
  std::vector<char> buffer(1024);
  for (;;) {
    Entry entry{};
    Entry* found = nullptr;
    const int error = call(&entry, buffer.data(), buffer.size(), &found);
    if (error == ERANGE && buffer.size() < (1u << 20)) {
      buffer.resize(buffer.size() * 2);
      continue;
    }
    if (error != 0 || found == nullptr) return std::nullopt;
    return entry;
  }
}

gid_t lookup_group(const std::string& name) {
  if (const auto id = as_number(name)) return static_cast<gid_t>(*id);
  const auto entry = lookup<group>([&](group* g, char* buf, std::size_t n, group** out) {
    return ::getgrnam_r(name.c_str(), g, buf, n, out);
  });
  if (!entry) throw std::invalid_argument("unknown group '" + name + "'");
  return entry->gr_gid;
}

}  // namespace

UserGroup lookup_user(std::string_view spec) {
  const auto colon = spec.find(':');
  const std::string user(spec.substr(0, colon));
  if (user.empty()) throw std::invalid_argument("'" + std::string(spec) + "': no user named");
  UserGroup who;
  const auto id = as_number(user);
  const auto entry = lookup<passwd>([&](passwd* p, char* buf, std::size_t n, passwd** out) {
    return id ? ::getpwuid_r(static_cast<uid_t>(*id), p, buf, n, out)
              : ::getpwnam_r(user.c_str(), p, buf, n, out);
  });
  if (!entry && !id) throw std::invalid_argument("unknown user '" + user + "'");
  who.uid = entry ? entry->pw_uid : static_cast<uid_t>(*id);
  if (colon != std::string_view::npos) {
    const std::string group(spec.substr(colon + 1));
    if (group.empty()) throw std::invalid_argument("'" + std::string(spec) + "': no group named");
    who.gid = lookup_group(group);
    who.explicit_group = true;
  } else if (entry) {
    who.gid = entry->pw_gid;
  } else {
    throw std::invalid_argument("uid " + user + " has no passwd entry: name a group (UID:GROUP)");
  }
  return who;
}

namespace {

[[noreturn]] void fail(const std::string& step) {
  throw std::system_error(errno, std::generic_category(), "drop_privileges: " + step);
}

bool already(const UserGroup& who) {
  uid_t ruid, euid, suid;
  gid_t rgid, egid, sgid;
  ::getresuid(&ruid, &euid, &suid);
  ::getresgid(&rgid, &egid, &sgid);
  return ruid == who.uid && euid == who.uid && suid == who.uid && rgid == who.gid &&
         egid == who.gid && sgid == who.gid && ::getgroups(0, nullptr) == 0;
}

}  // namespace

void drop_privileges(const UserGroup& who) {
  if (already(who)) return;
  // Groups first: once the uid is not root, neither setgroups nor setgid is allowed any more.
  if (::setgroups(0, nullptr) != 0) fail("setgroups(0) (clearing supplementary groups)");
  // setresgid/setresuid set the real, effective and saved ids together: no saved root id is
  // left to switch back to.
  if (::setresgid(who.gid, who.gid, who.gid) != 0) fail("setgid(" + std::to_string(who.gid) + ")");
  if (::setresuid(who.uid, who.uid, who.uid) != 0) fail("setuid(" + std::to_string(who.uid) + ")");
  if (!already(who)) {
    errno = EPERM;
    fail("the ids did not change to " + who.to_string());
  }
  // The proof that it is for good: becoming root again must fail (unless `who` is root).
  if (who.uid != 0 && ::setuid(0) == 0) {
    errno = EPERM;
    fail("setuid(0) still succeeds after the drop");
  }
}

}  // namespace sockserv
