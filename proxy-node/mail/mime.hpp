#pragma once
// The parts of an Internet message (RFC 5322 + MIME, RFC 2045-2049) for inspection: each
// leaf part's body with its Content-Transfer-Encoding undone (base64, quoted-printable;
// 7bit/8bit/binary as is), multiparts walked to their leaves, message/rfc822 parts
// opened as messages. The engine sees what the recipient's mail client will show or save.
//
// Lenient, as mail clients are, since a sender who wants past a scanner crafts the message
// malformed: CRLF or bare LF line ends; header fields unfolded, names case-insensitive, the
// first of a repeated field used; the header section ends at the first empty line, or at the
// first line that is not a field (the body starts with it: a part whose empty line was left
// out is still inspected). Parameters
// quoted or not, RFC 2231 values joined and percent-decoded (bytes in their declared charset,
// not converted; RFC 2047 encoded-words are left as sent). base64 skips what is not in its
// alphabet and goes on past padding; quoted-printable keeps an invalid '=' as is; unknown
// encodings are returned as sent. A multipart without a boundary, or whose boundary never
// opens a part, is one text/plain leaf; without a close delimiter the last part runs to the
// end. Multiparts and messages declared base64 or quoted-printable (RFC 2045 forbids it) are
// decoded before they are walked.
//
// Bounded: linear in the message size for each level of nesting, with limits on the leaves
// and the depth.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace proxy::mail {

struct MimePart {
    // Media type, lowercased, without parameters; "text/plain" when absent (RFC 2045 5.2); the
    // default inside multipart/digest is "message/rfc822".
    std::string content_type;
    // Content-Disposition filename= (or Content-Type name=), may be empty; quoted-string unquoted.
    std::string filename;
    std::string transfer_encoding;  // as declared, lowercased ("7bit" when absent)
    std::string body;               // transfer-decoding undone
    std::size_t depth = 0;          // 0: the message's own body
};

struct MimeLimits {
    std::size_t max_parts = 1000;  // leaf parts
    std::size_t max_depth = 16;    // nesting of multiparts / message/rfc822
};

struct MimeResult {
    std::vector<MimePart> parts;
    // Non-empty when the structure is refused: more than max_parts leaves, nested deeper than
    // max_depth. A person-readable sentence ("more than 1000 MIME parts"). parts then holds
    // what was found before the limit.
    std::string error;
};

// `message`: the whole message as received (headers, blank line, body), CRLF or bare LF line ends.
// Leaf parts in document order.
MimeResult parse_message(std::string_view message, const MimeLimits& limits = {});

}  // namespace proxy::mail
