#pragma once
// Public suffixes: names under which unrelated parties register domains (com, co.uk,
// github.io). A certificate for one, or a wildcard over one, would cover everybody's
// names, so the issuance policy refuses them whatever its allow list says.

#include <cstddef>
#include <optional>
#include <string_view>

namespace ca::policy {

// name: normalised (lower-case, no trailing dot). True for listed suffixes only; an
// unlisted single label is not "listed", but names with one label are refused anyway.
bool is_public_suffix(std::string_view name);

// The public suffix plus one label ("www.example.co.uk" -> "example.co.uk"), as a view
// into name; nullopt when name is itself a public suffix or a single label. An unlisted
// top-level label counts as a public suffix (the PSL's default "*" rule).
std::optional<std::string_view> registrable_domain(std::string_view name);

std::size_t builtin_public_suffix_count();

}  // namespace ca::policy
