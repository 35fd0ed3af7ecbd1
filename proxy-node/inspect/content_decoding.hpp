#pragma once
// Content-Encoding under inspection: a message sent gzip-, deflate-, br- or zstd-encoded is scanned
// as the client will see it, decoded. The relay still forwards the encoded bytes unchanged;
// only what the engine is fed is decoded.
//
// Bounded: output is produced in small blocks and handed on only while the engine is
// undecided, so a decompression bomb costs at most the engine's scan limit (max_scan_bytes).
// A body that does not decode (mislabelled or corrupt) is scanned raw from that point on.

#include "inspect/inspector.hpp"

#include <memory>
#include <string_view>

namespace proxy::inspect {

enum class ContentCoding { identity, gzip, deflate, br, zstd, other };

// The coding a Content-Encoding header names: a single gzip, x-gzip, deflate, br or zstd (case-
// insensitive, surrounding blanks ignored); `other` for anything else (lists, unknown codings),
// which is scanned as sent.
ContentCoding parse_content_coding(std::string_view header);

// `inner` fed the decoded body. Returns `inner` itself for identity and other.
std::unique_ptr<Inspection> decoding_inspection(std::unique_ptr<Inspection> inner, ContentCoding coding);

}  // namespace proxy::inspect
