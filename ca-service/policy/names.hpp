#pragma once
// What a requested name is (DNS name, wildcard or IP literal) and the patterns operators
// write to allow or deny names. Everything here works on normalised names: lower-case
// ASCII, no trailing dot.

#include "ossl/encoding.hpp"
#include "protocol/errors.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

namespace ca::policy {

inline constexpr std::size_t kMaxLabelLength = 63;     // RFC 1035 section 2.3.4
inline constexpr std::size_t kMaxDnsNameLength = 253;  // textual form without the trailing dot
inline constexpr std::size_t kMinDnsLabels = 2;        // "localhost"-style single labels are refused

enum class NameKind { dns, ip };

struct ClassifiedName {
    NameKind kind = NameKind::dns;
    // dns: lower-case, trailing dot removed. ip: canonical text (inet_ntop), e.g. "2001:db8::1".
    std::string normalised;
    bool wildcard = false;  // dns only: the leftmost label is "*"
    ossl::Bytes ip;         // ip only: 4 or 16 bytes in network order, as the SAN carries them

    // dns wildcard: the name the wildcard stands over ("*.example.com" -> "example.com");
    // otherwise the name itself.
    std::string_view base() const;
};

// Syntax only (no policy, no public suffixes). Refusals are invalid_name with a message
// that quotes the name and says what to change. Rules:
// - raw UTF-8 is refused: send the IDNA A-label ("xn--...") form; A-labels are not decoded;
// - LDH labels of 1-63 octets, no leading/trailing hyphen, at most 253 octets in all,
//   at least two labels, a top-level label that is not all digits; underscores are refused;
// - one trailing dot is accepted and removed (the absolute form names the same host);
// - a wildcard is only a whole leftmost "*" label;
// - anything with ':' must be an IPv6 literal, anything of only digits and dots an IPv4
//   literal in dotted-quad form (so 999.1.1.1 and 1.2.3 are invalid, not DNS names).
std::variant<ClassifiedName, protocol::Error> classify_name(std::string_view requested);

// An operator's allow/deny pattern:
//   "example.com"    exactly that name
//   "*.example.com"  any name strictly below example.com, at any depth
//   ".example.com"   example.com and everything below it
// Case-insensitive.
class NamePattern {
public:
    enum class Scope { exact, below, subtree };

    // Throws std::invalid_argument saying what is wrong with the pattern.
    static NamePattern parse(std::string_view pattern);

    // For a concrete name; or, for a wildcard, whether the pattern matches every name the
    // wildcard can stand for (what an allow rule must do) ...
    bool covers_all(const ClassifiedName& name) const;
    // ... or at least one of them (enough for a deny rule: denying bank.example.com must
    // also refuse *.example.com).
    bool covers_any(const ClassifiedName& name) const;

    const std::string& text() const { return text_; }
    Scope scope() const { return scope_; }
    const std::string& domain() const { return domain_; }

private:
    NamePattern(Scope scope, std::string domain, std::string text);
    bool matches(std::string_view dns_name) const;

    Scope scope_;
    std::string domain_;  // the pattern without "*." or "."
    std::string text_;    // as written, for messages
};

}  // namespace ca::policy
