#pragma once
// SMTP (RFC 5321) pieces the mail relay needs, free of I/O: commands and replies as lines,
// the EHLO capabilities the node passes on, and a message's content in both framings: DATA
// (dot-stuffed, ended by <CRLF>.<CRLF>) and BDAT chunks (RFC 3030).
//
// A message's content is kept in one canonical form: unstuffed, every line ending in CRLF.
// A bare CR or LF from the client becomes CRLF, so the server gets exactly the lines the
// node inspected and no sequence it could read as an end of data that the node did not
// (SMTP smuggling: "<LF>.<LF>", "<CR>.<CR>" and the like are content here, and go upstream
// dot-stuffed).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace proxy::mail {

struct Command {
    std::string verb;  // upper-cased ("EHLO", "MAIL", ...)
    std::string args;  // what follows the verb and its space, as sent
};
// One command line (without its CRLF).
Command parse_command(std::string_view line);

// A reply, possibly multi-line ("250-a", "250-b", "250 c").
struct Reply {
    int code = 0;
    std::vector<std::string> lines;  // each line's text after "NNN-" / "NNN "
    std::string wire() const;        // the reply as sent, CRLF line ends
    bool positive() const { return code >= 200 && code < 400; }
};
Reply make_reply(int code, std::string_view text);

// Collects a reply from lines. feed() returns true when `line` completed it; a line that is
// not "NNN-text" / "NNN text" / "NNN", or changes the code within one reply, sets error().
class ReplyReader {
public:
    bool feed(std::string_view line);
    const std::string& error() const { return error_; }
    Reply take();

private:
    Reply reply_;
    std::string error_;
};

// What the server's EHLO reply offers, and what the node tells the client.
struct Extensions {
    bool starttls = false;
    bool chunking = false;
    bool pipelining = false;
    std::optional<std::uint64_t> size;  // SIZE n (0: no fixed limit)
};
Extensions parse_extensions(const Reply& ehlo);

struct ClientOffer {
    bool starttls = false;                // offer STARTTLS (the node can do it upstream)
    std::uint64_t max_message_bytes = 0;  // SIZE the node accepts (with the server's, the smaller)
};
// The EHLO reply the client gets: the server's greeting line and extensions, less those the
// node does not pass on: STARTTLS unless offered, BINARYMIME (content without line
// structure), the server's SIZE (replaced by the smaller limit). CHUNKING is passed on as
// the server offers it: a message the client sends in BDAT chunks goes to the server as one
// BDAT LAST once inspected.
Reply client_ehlo_reply(const Reply& server, const ClientOffer& offer);

// DATA content from the client, after 354: take() consumes bytes until <CRLF>.<CRLF> and
// returns how many it used (the rest belongs to the next command). Content past `max_bytes`
// is counted, not kept (oversized()).
class DataReader {
public:
    explicit DataReader(std::size_t max_bytes) : max_(max_bytes) {}
    std::size_t take(std::span<const std::uint8_t> in);
    bool complete() const { return state_ == State::done; }
    bool oversized() const { return over_; }
    std::uint64_t size() const { return size_; }  // canonical content bytes seen, kept or not
    std::string& content() { return content_; }

private:
    enum class State { line_start, in_line, cr, dot, dot_cr, done };
    void put(char c);
    void end_line();
    std::size_t max_;
    State state_ = State::line_start;
    std::string content_;
    std::uint64_t size_ = 0;
    bool over_ = false;
};

// Content as DATA content on the wire: line ends made CRLF (a bare CR or LF too, as in
// DataReader), a final line end added if missing, dot-stuffed, ended by <CRLF>.<CRLF>.
std::string stuffed(std::string_view content);

// "BDAT <size> [LAST]": nullopt when malformed.
struct Bdat {
    std::uint64_t size = 0;
    bool last = false;
};
std::optional<Bdat> parse_bdat(std::string_view args);

// The address in "FROM:<a@b> SIZE=..." / "TO:<a@b> ...", for logs ("" for the null
// sender <>); nullopt when the argument has no <...>.
std::optional<std::string> path_of(std::string_view args);
// The SIZE= parameter of MAIL FROM, if any.
std::optional<std::uint64_t> declared_size(std::string_view args);

}  // namespace proxy::mail
