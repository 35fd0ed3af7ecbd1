#pragma once
// ICAP (RFC 3507) on the wire, without I/O: service URLs, the head of an ICAP response
// (status line and header fields), Encapsulated, an OPTIONS answer, and the chunked
// encapsulation of bodies (with the "ieof" extension of a preview that holds the whole
// body). The encapsulated HTTP heads are read by the node's one HTTP/1.1 parser
// (http/message_parser.hpp); ICAP's own head has the same field syntax under "ICAP/1.0".

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace proxy::icap {

struct ServiceUrl {
    bool tls = false;      // icaps://
    std::string host;      // name or IP literal (without brackets)
    std::uint16_t port = 1344;
    std::string service;   // path after the authority, with its leading '/'
    std::string text;      // as given, for the request line and logs
    std::string authority() const;  // host:port for the Host field
};
// "icap://host[:port]/service" or "icaps://..." (default ports 1344 and 11344). Throws
// std::invalid_argument saying what is wrong.
ServiceUrl parse_service_url(std::string_view url);

struct Head {
    int status = 0;
    std::string reason;
    std::vector<std::pair<std::string, std::string>> headers;
    std::optional<std::string_view> header(std::string_view name) const;  // case-insensitive, first
};

// The head at the front of `buf` if complete ("ICAP/1.0 NNN reason", fields, empty line):
// sets `consumed` to its length. nullopt: need more. Throws std::runtime_error when it is not
// an ICAP head, is malformed or exceeds `limit` bytes.
std::optional<Head> parse_head(std::string_view buf, std::size_t& consumed, std::size_t limit);

// Encapsulated: the sections in order with their offsets ("req-hdr=0, res-hdr=137, res-body=296").
struct Section {
    std::string name;  // req-hdr, res-hdr, req-body, res-body, null-body, opt-body
    std::size_t offset = 0;
};
// Throws std::runtime_error when the value is malformed: unknown names, offsets not
// increasing, no or more than one body section, a body section not last.
std::vector<Section> parse_encapsulated(std::string_view value);

// What a service said in its OPTIONS answer.
struct Options {
    std::vector<std::string> methods;         // REQMOD, RESPMOD
    std::optional<std::size_t> preview;       // Preview: bytes it wants first
    std::vector<std::string> transfer_preview, transfer_ignore, transfer_complete;  // extensions, or "*"
    std::optional<unsigned> max_connections;
    std::string istag;
    bool allow_204 = false;
    std::chrono::seconds ttl{0};  // Options-TTL; 0: not given
    bool supports(std::string_view method) const;
    // For a file extension (lower case, "" if none): preview (with the size), complete (the
    // whole body, no preview) or ignore (not sent at all) by the Transfer-* lists.
    enum class Transfer { preview, complete, ignore };
    Transfer transfer_for(std::string_view extension) const;
};
// Throws std::runtime_error when the answer is not a 200 or lacks Methods/ISTag.
Options parse_options(const Head& head);

// The extension of a request target's path ("/a/b.EXE?x" -> "exe"), lower case; "" if none.
std::string target_extension(std::string_view target);

// One chunk of encapsulated body ("size CRLF bytes CRLF"); empty bytes give nothing.
void append_chunk(std::string& out, std::span<const std::uint8_t> bytes);
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";
inline constexpr std::string_view kLastChunkIeof = "0; ieof\r\n\r\n";

// The chunked body of an ICAP answer, decoded incrementally.
class ChunkDecoder {
public:
    explicit ChunkDecoder(std::size_t line_limit = 1024) : line_limit_(line_limit) {}
    // Decodes from the front of `in`; decoded bytes are appended to `out` when it is given
    // (else only counted). Returns the bytes of `in` used; stops after the last chunk
    // (done()). Throws std::runtime_error on malformed framing.
    std::size_t feed(std::string_view in, std::string* out);
    bool done() const { return state_ == State::done; }
    std::uint64_t decoded() const { return decoded_; }

private:
    enum class State { size_line, data, data_crlf, trailer, done };
    State state_ = State::size_line;
    std::string line_;
    std::uint64_t remaining_ = 0;
    std::uint64_t decoded_ = 0;
    std::size_t line_limit_;
};

}  // namespace proxy::icap
