// mail/smtp_protocol: commands, replies, EHLO filtering, DATA framing (dot-stuffing and the
// end of data, SMTP smuggling), BDAT arguments and MAIL/RCPT parameters.

#include "mail/smtp_protocol.hpp"

#include <catch2/catch_test_macros.hpp>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

using namespace proxy::mail;

namespace {

std::span<const std::uint8_t> bytes(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

struct Read {
    std::string content;
    std::size_t used = 0;  // bytes take() consumed
    bool complete = false;
    bool oversized = false;
    std::uint64_t size = 0;
};

// The whole input in one take() (then again with what is left, as the relay does on a new read).
Read read_whole(std::string_view in, std::size_t max = 1 << 20) {
    DataReader r(max);
    Read out;
    out.used = r.take(bytes(in));
    out.complete = r.complete();
    if (!out.complete) REQUIRE(out.used == in.size());
    out.content = r.content();
    out.oversized = r.oversized();
    out.size = r.size();
    return out;
}

// One byte per take(), stopping at completion.
Read read_bytewise(std::string_view in, std::size_t max = 1 << 20) {
    DataReader r(max);
    Read out;
    for (std::size_t i = 0; i < in.size() && !r.complete(); ++i) {
        const std::size_t n = r.take(bytes(in.substr(i, 1)));
        REQUIRE(n == 1);
        out.used += n;
    }
    if (r.complete()) CHECK(r.take(bytes(in.substr(out.used))) == 0);  // nothing more once done
    out.complete = r.complete();
    out.content = r.content();
    out.oversized = r.oversized();
    out.size = r.size();
    return out;
}

// Both ways must agree; returns the whole-input result.
Read read_data(std::string_view in, std::size_t max = 1 << 20) {
    const Read a = read_whole(in, max);
    const Read b = read_bytewise(in, max);
    CHECK(a.content == b.content);
    CHECK(a.used == b.used);
    CHECK(a.complete == b.complete);
    CHECK(a.oversized == b.oversized);
    CHECK(a.size == b.size);
    return a;
}

std::size_t count(std::string_view hay, std::string_view needle) {
    std::size_t n = 0;
    for (auto at = hay.find(needle); at != std::string_view::npos; at = hay.find(needle, at + 1)) ++n;
    return n;
}

bool ends_with(std::string_view s, std::string_view tail) {
    return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

// Every line of `s` ends in CRLF, and there is no bare CR or LF.
bool canonical(std::string_view s) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\r' && (i + 1 >= s.size() || s[i + 1] != '\n')) return false;
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return false;
    }
    return s.empty() || ends_with(s, "\r\n");
}

Reply server_ehlo(std::vector<std::string> lines) {
    Reply r;
    r.code = 250;
    r.lines = std::move(lines);
    return r;
}

bool has_line(const Reply& r, std::string_view line) {
    return std::find(r.lines.begin(), r.lines.end(), line) != r.lines.end();
}

std::vector<std::string> lines_starting(const Reply& r, std::string_view prefix) {
    std::vector<std::string> out;
    for (const auto& l : r.lines)
        if (l.substr(0, prefix.size()) == prefix) out.push_back(l);
    return out;
}

}  // namespace

// ---- commands ------------------------------------------------------------------------------

TEST_CASE("parse_command: the verb upper-cased, the arguments as sent", "[smtp]") {
    auto c = parse_command("MAIL FROM:<a@b> SIZE=5");
    CHECK(c.verb == "MAIL");
    CHECK(c.args == "FROM:<a@b> SIZE=5");

    c = parse_command("mail from:<A@b>");
    CHECK(c.verb == "MAIL");
    CHECK(c.args == "from:<A@b>");

    c = parse_command("eHlO client.Example");
    CHECK(c.verb == "EHLO");
    CHECK(c.args == "client.Example");

    c = parse_command("RCPT TO:<x@y>  NOTIFY=NEVER ");
    CHECK(c.verb == "RCPT");
    CHECK(c.args == "TO:<x@y>  NOTIFY=NEVER ");  // inner and trailing spaces kept
}

TEST_CASE("parse_command: commands without arguments", "[smtp]") {
    for (const char* line : {"DATA", "data", "QUIT", "rset", "NOOP", "StartTLS"}) {
        const auto c = parse_command(line);
        std::string up = line;
        for (auto& ch : up) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        CHECK(c.verb == up);
        CHECK(c.args.empty());
    }
    const auto empty = parse_command("");
    CHECK(empty.verb.empty());
    CHECK(empty.args.empty());

    const auto trailing = parse_command("DATA ");  // a space and nothing after it
    CHECK(trailing.verb == "DATA");
    CHECK(trailing.args.empty());
}

// ---- replies -------------------------------------------------------------------------------

TEST_CASE("ReplyReader: single-line replies", "[smtp]") {
    ReplyReader rr;
    CHECK(rr.feed("250 OK"));
    CHECK(rr.error().empty());
    auto r = rr.take();
    CHECK(r.code == 250);
    CHECK(r.lines == std::vector<std::string>{"OK"});
    CHECK(r.positive());

    CHECK(rr.feed("250"));
    r = rr.take();
    CHECK(r.code == 250);
    REQUIRE(r.lines.size() == 1);
    CHECK(r.lines[0].empty());

    CHECK(rr.feed("554 5.7.1 rejected"));
    r = rr.take();
    CHECK(r.code == 554);
    CHECK(r.lines == std::vector<std::string>{"5.7.1 rejected"});
    CHECK_FALSE(r.positive());

    CHECK(rr.feed("354 go ahead"));
    CHECK(rr.take().positive());
    CHECK(rr.feed("421 bye"));
    CHECK_FALSE(rr.take().positive());
    CHECK(rr.error().empty());
}

TEST_CASE("ReplyReader: multi-line replies, and take() starts the next", "[smtp]") {
    ReplyReader rr;
    CHECK_FALSE(rr.feed("250-a"));
    CHECK_FALSE(rr.feed("250-b"));
    CHECK(rr.feed("250 c"));
    CHECK(rr.error().empty());
    auto r = rr.take();
    CHECK(r.code == 250);
    CHECK(r.lines == std::vector<std::string>{"a", "b", "c"});

    // The next reply starts afresh (a different code is no "change within a reply").
    CHECK_FALSE(rr.feed("550-x"));
    CHECK(rr.feed("550 y"));
    CHECK(rr.error().empty());
    r = rr.take();
    CHECK(r.code == 550);
    CHECK(r.lines == std::vector<std::string>{"x", "y"});

    // Empty texts.
    CHECK_FALSE(rr.feed("250-"));
    CHECK(rr.feed("250 "));
    r = rr.take();
    CHECK(r.lines == std::vector<std::string>{"", ""});
    CHECK(rr.error().empty());

    // A fresh reader's take() is an empty reply.
    ReplyReader fresh;
    const auto none = fresh.take();
    CHECK(none.code == 0);
    CHECK(none.lines.empty());
}

TEST_CASE("ReplyReader: lines that are not replies set error", "[smtp]") {
    for (const char* bad : {"hello", "99 x", "2500 x", "250x", "", "25", "2a0 x", "-250 x", "250\tx", "650 x", "150 x",
                            "099 x", "250:x"}) {
        ReplyReader rr;
        INFO(bad);
        CHECK_FALSE(rr.feed(bad));
        CHECK_FALSE(rr.error().empty());
        // Sticky: a good line afterwards does not complete anything.
        CHECK_FALSE(rr.feed("250 OK"));
        CHECK_FALSE(rr.error().empty());
    }
}

TEST_CASE("ReplyReader: a code change within a multi-line reply sets error", "[smtp]") {
    ReplyReader rr;
    CHECK_FALSE(rr.feed("250-a"));
    CHECK_FALSE(rr.feed("251 b"));
    CHECK_FALSE(rr.error().empty());

    ReplyReader rr2;
    CHECK_FALSE(rr2.feed("250-a"));
    CHECK_FALSE(rr2.feed("250-b"));
    CHECK_FALSE(rr2.feed("550-c"));
    CHECK_FALSE(rr2.error().empty());
}

TEST_CASE("Reply::wire and make_reply", "[smtp]") {
    const auto one = make_reply(250, "2.0.0 OK");
    CHECK(one.code == 250);
    CHECK(one.lines == std::vector<std::string>{"2.0.0 OK"});
    CHECK(one.wire() == "250 2.0.0 OK\r\n");

    Reply multi;
    multi.code = 250;
    multi.lines = {"mx.example", "PIPELINING", "SIZE 100", "8BITMIME"};
    CHECK(multi.wire() == "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 100\r\n250 8BITMIME\r\n");

    Reply bare;
    bare.code = 421;
    CHECK(bare.wire() == "421\r\n");

    // Round trip through ReplyReader, line by line.
    for (const Reply& orig : {one, multi, make_reply(554, "no"), make_reply(220, "")}) {
        const std::string w = orig.wire();
        ReplyReader rr;
        bool done = false;
        std::size_t pos = 0;
        int lines = 0;
        while (pos < w.size()) {
            const auto eol = w.find("\r\n", pos);
            REQUIRE(eol != std::string::npos);
            REQUIRE_FALSE(done);
            done = rr.feed(std::string_view(w).substr(pos, eol - pos));
            ++lines;
            pos = eol + 2;
        }
        CHECK(done);
        CHECK(rr.error().empty());
        CHECK(lines == static_cast<int>(orig.lines.size()));
        const auto back = rr.take();
        CHECK(back.code == orig.code);
        CHECK(back.lines == orig.lines);
        CHECK(back.wire() == w);
    }
}

// ---- EHLO ----------------------------------------------------------------------------------

TEST_CASE("parse_extensions", "[smtp]") {
    const auto server = server_ehlo({"mx.example", "PIPELINING", "SIZE 10000000", "STARTTLS", "CHUNKING", "BINARYMIME",
                                     "8BITMIME", "AUTH PLAIN"});
    const auto e = parse_extensions(server);
    CHECK(e.starttls);
    CHECK(e.chunking);
    CHECK(e.pipelining);
    REQUIRE(e.size);
    CHECK(*e.size == 10000000);

    const auto lower = parse_extensions(server_ehlo({"mx.example", "starttls", "chunking", "pipelining", "size 42"}));
    CHECK(lower.starttls);
    CHECK(lower.chunking);
    CHECK(lower.pipelining);
    REQUIRE(lower.size);
    CHECK(*lower.size == 42);

    const auto none = parse_extensions(server_ehlo({"mx.example", "8BITMIME"}));
    CHECK_FALSE(none.starttls);
    CHECK_FALSE(none.chunking);
    CHECK_FALSE(none.pipelining);
    CHECK_FALSE(none.size);

    // The greeting line is not an extension, whatever it says.
    const auto greeting = parse_extensions(server_ehlo({"STARTTLS"}));
    CHECK_FALSE(greeting.starttls);

    // SIZE without a number, or with one that is not: no fixed limit.
    for (const char* s : {"SIZE", "SIZE abc", "SIZE 0", "SIZE -1", "SIZE 99999999999999999999999"}) {
        INFO(s);
        const auto ext = parse_extensions(server_ehlo({"mx.example", s}));
        REQUIRE(ext.size);
        CHECK(*ext.size == 0);
    }
    // A keyword that only starts like one is not it.
    const auto prefix = parse_extensions(server_ehlo({"mx.example", "STARTTLSX", "SIZEX 5", "CHUNKINGS"}));
    CHECK_FALSE(prefix.starttls);
    CHECK_FALSE(prefix.chunking);
    CHECK_FALSE(prefix.size);
}

TEST_CASE("client_ehlo_reply: what the client is offered", "[smtp]") {
    const auto server = server_ehlo({"mx.example", "PIPELINING", "SIZE 10000000", "STARTTLS", "CHUNKING", "BINARYMIME",
                                     "8BITMIME", "AUTH PLAIN"});

    SECTION("STARTTLS not offered, node limit larger") {
        const auto r = client_ehlo_reply(server, {.starttls = false, .max_message_bytes = 50000000});
        CHECK(r.code == 250);
        REQUIRE_FALSE(r.lines.empty());
        CHECK(r.lines.front() == "mx.example");
        CHECK_FALSE(has_line(r, "STARTTLS"));
        CHECK_FALSE(has_line(r, "BINARYMIME"));
        CHECK(has_line(r, "CHUNKING"));
        CHECK(has_line(r, "PIPELINING"));
        CHECK(has_line(r, "8BITMIME"));
        CHECK(has_line(r, "AUTH PLAIN"));
        CHECK(lines_starting(r, "SIZE") == std::vector<std::string>{"SIZE 10000000"});
        const auto e = parse_extensions(r);
        CHECK_FALSE(e.starttls);
        CHECK(e.chunking);
        CHECK(e.pipelining);
        REQUIRE(e.size);
        CHECK(*e.size == 10000000);
        // On the wire: multi-line, the greeting first.
        const auto w = r.wire();
        CHECK(w.substr(0, 15) == "250-mx.example\r");
        CHECK(count(w, "250 ") == 1);
    }
    SECTION("STARTTLS offered, node limit smaller") {
        const auto r = client_ehlo_reply(server, {.starttls = true, .max_message_bytes = 1000});
        CHECK(r.lines.front() == "mx.example");
        CHECK(std::count(r.lines.begin(), r.lines.end(), "STARTTLS") == 1);
        CHECK_FALSE(has_line(r, "BINARYMIME"));
        CHECK(lines_starting(r, "SIZE") == std::vector<std::string>{"SIZE 1000"});
        CHECK(parse_extensions(r).starttls);
    }
    SECTION("STARTTLS offered by the node though the server has none") {
        const auto r = client_ehlo_reply(server_ehlo({"mx.example"}), {.starttls = true, .max_message_bytes = 5});
        CHECK(std::count(r.lines.begin(), r.lines.end(), "STARTTLS") == 1);
    }
    SECTION("SIZE 0, bare SIZE or no SIZE on the server: the node's limit") {
        for (const auto& lines : std::vector<std::vector<std::string>>{
                 {"mx.example", "SIZE 0", "PIPELINING"}, {"mx.example", "SIZE", "PIPELINING"}, {"mx.example", "PIPELINING"}}) {
            const auto r = client_ehlo_reply(server_ehlo(lines), {.starttls = false, .max_message_bytes = 777});
            CHECK(lines_starting(r, "SIZE") == std::vector<std::string>{"SIZE 777"});
            CHECK(r.lines.front() == "mx.example");
            CHECK(has_line(r, "PIPELINING"));
        }
    }
    SECTION("lowercase keywords are recognised") {
        const auto r = client_ehlo_reply(server_ehlo({"mx.example", "starttls", "binarymime", "size 100", "Size 200",
                                                      "chunking", "pipelining"}),
                                         {.starttls = false, .max_message_bytes = 1000});
        CHECK_FALSE(has_line(r, "starttls"));
        CHECK_FALSE(has_line(r, "binarymime"));
        CHECK_FALSE(has_line(r, "size 100"));
        CHECK_FALSE(has_line(r, "Size 200"));
        CHECK(has_line(r, "chunking"));
        CHECK(has_line(r, "pipelining"));
        // Exactly one SIZE in any case.
        std::size_t sizes = 0;
        for (const auto& l : r.lines) {
            std::string w = l.substr(0, 4);
            for (auto& c : w) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
            if (w == "SIZE") ++sizes;
        }
        CHECK(sizes == 1);
        CHECK_FALSE(parse_extensions(r).starttls);
    }
    SECTION("STARTTLS with trailing text is still STARTTLS") {
        const auto r = client_ehlo_reply(server_ehlo({"mx.example", "STARTTLS now"}), {.max_message_bytes = 10});
        CHECK_FALSE(parse_extensions(r).starttls);
    }
    SECTION("the code is 250 whatever the server said") {
        Reply odd = server_ehlo({"mx.example", "PIPELINING"});
        odd.code = 251;
        CHECK(client_ehlo_reply(odd, {.max_message_bytes = 10}).code == 250);
        // No lines at all: an empty greeting.
        const auto empty = client_ehlo_reply(Reply{}, {.max_message_bytes = 10});
        REQUIRE_FALSE(empty.lines.empty());
        CHECK(empty.lines.front().empty());
    }
}

// ---- DATA ----------------------------------------------------------------------------------

TEST_CASE("DataReader: a simple message, and the bytes after it are left", "[smtp]") {
    const auto r = read_data("a\r\nb\r\n.\r\n");
    CHECK(r.complete);
    CHECK(r.content == "a\r\nb\r\n");
    CHECK(r.used == 9);
    CHECK_FALSE(r.oversized);
    CHECK(r.size == 6);

    // Pipelined: the next command follows the terminator in the same read.
    const std::string in = "a\r\nb\r\n.\r\nQUIT\r\n";
    const auto p = read_data(in);
    CHECK(p.complete);
    CHECK(p.content == "a\r\nb\r\n");
    CHECK(p.used == 9);
    CHECK(in.substr(p.used) == "QUIT\r\n");

    // A second message right behind it is not touched.
    const std::string two = "x\r\n.\r\ny\r\n.\r\n";
    const auto first = read_data(two);
    CHECK(first.used == 6);
    CHECK(first.content == "x\r\n");
    const auto second = read_data(std::string_view(two).substr(first.used));
    CHECK(second.content == "y\r\n");
    CHECK(second.used == 6);
}

TEST_CASE("DataReader: the empty message", "[smtp]") {
    const auto r = read_data(".\r\nMAIL FROM:<a@b>\r\n");
    CHECK(r.complete);
    CHECK(r.content.empty());
    CHECK(r.used == 3);
    CHECK(r.size == 0);

    // One empty line.
    const auto e = read_data("\r\n.\r\n");
    CHECK(e.complete);
    CHECK(e.content == "\r\n");
    CHECK(e.used == 5);
}

TEST_CASE("DataReader: nothing yet, or not yet the end", "[smtp]") {
    for (const char* partial : {"", "a", "a\r", "a\r\n", "a\r\n.", "a\r\n.\r", ".", ".\r", "\r\n.\r"}) {
        INFO(partial);
        const auto r = read_data(partial);
        CHECK_FALSE(r.complete);
        CHECK(r.used == std::string_view(partial).size());
    }
}

TEST_CASE("DataReader: dot-stuffing removed", "[smtp]") {
    CHECK(read_data("..x\r\n.\r\n").content == ".x\r\n");
    CHECK(read_data("a\r\n..x\r\n.\r\n").content == "a\r\n.x\r\n");
    CHECK(read_data("a\r\n..\r\n.\r\n").content == "a\r\n.\r\n");  // a line of one dot, stuffed
    CHECK(read_data("...\r\n.\r\n").content == "..\r\n");
    // A single leading dot followed by text: the dot is taken as stuffing.
    CHECK(read_data(".x\r\n.\r\n").content == "x\r\n");
    CHECK(read_data(". \r\n.\r\n").content == " \r\n");
    CHECK(read_data("a\r\n.x\r\n.\r\n").content == "a\r\nx\r\n");
    // Dots not at a line start are content.
    CHECK(read_data("a.b.\r\n.\r\n").content == "a.b.\r\n");
    CHECK(read_data("a\r\nb..\r\n.\r\n").content == "a\r\nb..\r\n");
}

TEST_CASE("DataReader: bare CR and bare LF become CRLF", "[smtp]") {
    auto r = read_data("a\nb\n\r\n.\r\n");
    CHECK(r.complete);
    CHECK(r.content == "a\r\nb\r\n\r\n");
    r = read_data("a\rb\r\n.\r\n");
    CHECK(r.complete);
    CHECK(r.content == "a\r\nb\r\n");
    r = read_data("a\r\rb\r\n.\r\n");
    CHECK(r.complete);
    CHECK(r.content == "a\r\n\r\nb\r\n");
    r = read_data("a\n\nb\r\n.\r\n");
    CHECK(r.content == "a\r\n\r\nb\r\n");
    r = read_data("a\n\r\r\nb\r\n.\r\n");  // LF, CR, CRLF: three line ends
    CHECK(r.content == "a\r\n\r\n\r\nb\r\n");
    CHECK(canonical(r.content));
}

TEST_CASE("DataReader: byte-at-a-time equals all-at-once", "[smtp]") {
    // read_data checks both ways agree; here a message whose terminator and stuffing straddle
    // every possible split.
    const std::string in = "Subject: x\r\n..dot\r\n.\n\r\nbody\rmore\n.x\r\n\r\n.\r\nNEXT";
    const auto r = read_data(in);
    CHECK(r.complete);
    CHECK(in.substr(r.used) == "NEXT");
    CHECK(canonical(r.content));

    // Every split in two.
    for (std::size_t cut = 0; cut <= in.size(); ++cut) {
        DataReader d(1 << 20);
        std::size_t used = d.take(bytes(std::string_view(in).substr(0, cut)));
        if (!d.complete()) {
            CHECK(used == cut);
            used += d.take(bytes(std::string_view(in).substr(cut)));
        }
        CHECK(d.complete());
        CHECK(used == r.used);
        CHECK(d.content() == r.content);
    }
}

TEST_CASE("DataReader: SMTP smuggling sequences do not end the data", "[smtp]") {
    // Each is sent after "a" and followed by a smuggled transaction; only the real <CRLF>.<CRLF>
    // at the end may end the data.
    const std::string smuggled = "MAIL FROM:<ceo@victim.example>\r\nRCPT TO:<x@y>\r\nDATA\r\nforged\r\n";
    for (const std::string& seq : {std::string("\n.\n"), std::string("\r\n.\n"), std::string("\n.\r\n"),
                                  std::string("\r.\r"), std::string("\r.\r\n"), std::string("\r\n.\r"),
                                  std::string("\n.\r"), std::string("\r.\n"), std::string("\r\n.\rX"),
                                  std::string("\r\n.\r.\r\n"), std::string("\n..\r\n"), std::string("\r\r\n.\n"),
                                  std::string("\n\r\n.\n"), std::string("\r\n.\n\r\n"), std::string("\r\n\x00.\r\n", 6)}) {
        const std::string in = "a" + seq + smuggled + ".\r\nAFTER";
        INFO("sequence: " << [&] {
            std::string s;
            for (const char c : seq) s += c == '\r' ? "<CR>" : c == '\n' ? "<LF>" : std::string(1, c);
            return s;
        }());
        const auto r = read_data(in);
        REQUIRE(r.complete);
        CHECK(in.substr(r.used) == "AFTER");  // the real terminator, not the smuggled one
        CHECK(r.content.find("MAIL FROM:<ceo@victim.example>") != std::string::npos);
        CHECK(ends_with(r.content, "forged\r\n"));
        CHECK(canonical(r.content));
        // Upstream, the server sees one end of data, at the end.
        const std::string wire = stuffed(r.content);
        CHECK(count(wire, "\r\n.\r\n") == 1);
        CHECK(ends_with(wire, "\r\n.\r\n"));
        CHECK(wire.substr(0, 3) != ".\r\n");
        // No bare CR or LF upstream either.
        CHECK(canonical(wire));
        // And the server reads back what the node inspected.
        const auto back = read_data(wire);
        CHECK(back.complete);
        CHECK(back.used == wire.size());
        CHECK(back.content == r.content);

        // Without the final terminator the data is still going on.
        const std::string open = "a" + seq + smuggled;
        const auto o = read_data(open);
        CHECK_FALSE(o.complete);
        CHECK(o.used == open.size());
    }
}

TEST_CASE("DataReader: the end of data is exactly the first <CRLF>.<CRLF> (random inputs)", "[smtp]") {
    // The data begins at a line start (after DATA's CRLF): the end is the first "\r\n.\r\n" in
    // "\r\n" + input.
    std::mt19937 rng(20240607);
    // Single bytes for the near misses, and pieces of the terminator so that it does occur.
    const std::string_view alphabet[] = {"\r", "\n", ".", "a", " ", "\r\n", ".\r\n"};
    std::uniform_int_distribution<int> pick(0, std::size(alphabet) - 1);
    std::uniform_int_distribution<int> len(0, 16);
    int completed = 0;
    for (int iter = 0; iter < 20000; ++iter) {
        std::string in;
        const int n = len(rng);
        for (int i = 0; i < n; ++i) in += alphabet[pick(rng)];
        const auto at = ("\r\n" + in).find("\r\n.\r\n");
        const Read r = read_whole(in);
        const Read b = read_bytewise(in);
        INFO("iteration " << iter);
        REQUIRE(r.complete == (at != std::string::npos));
        REQUIRE(b.complete == r.complete);
        REQUIRE(b.content == r.content);
        if (!r.complete) continue;
        ++completed;
        REQUIRE(r.used == at + 3);
        REQUIRE(canonical(r.content));
        // stuffed() frames what was read so that it reads back the same.
        const std::string wire = stuffed(r.content);
        REQUIRE(count(wire, "\r\n.\r\n") + (wire.substr(0, 3) == ".\r\n" ? 1 : 0) == 1);
        const Read back = read_whole(wire);
        REQUIRE(back.complete);
        REQUIRE(back.used == wire.size());
        REQUIRE(back.content == r.content);
    }
    CHECK(completed > 1000);  // the samples do reach an end of data often enough
}

TEST_CASE("DataReader: max_bytes caps what is kept, not what is counted", "[smtp]") {
    const std::string in = "0123456789\r\nabcdefghij\r\n.\r\nNEXT";
    const auto r = read_data(in, 8);
    CHECK(r.complete);
    CHECK(r.oversized);
    CHECK(r.content == "01234567");
    CHECK(r.size == 24);  // canonical bytes: two lines of 10 and their CRLFs
    CHECK(in.substr(r.used) == "NEXT");

    const auto exact = read_data("abc\r\n.\r\n", 5);
    CHECK(exact.complete);
    CHECK_FALSE(exact.oversized);
    CHECK(exact.content == "abc\r\n");
    CHECK(exact.size == 5);

    const auto one_over = read_data("abcd\r\n.\r\n", 5);
    CHECK(one_over.oversized);
    CHECK(one_over.content == "abcd\r");
    CHECK(one_over.size == 6);

    const auto zero = read_data("x\r\n.\r\n", 0);
    CHECK(zero.complete);
    CHECK(zero.oversized);
    CHECK(zero.content.empty());
    CHECK(zero.size == 3);

    // The size is of canonical content: stuffing dots are not counted, bare LFs count as CRLF.
    const auto canon = read_data("..a\nb\r\n.\r\n", 100);
    CHECK(canon.content == ".a\r\nb\r\n");
    CHECK(canon.size == canon.content.size());
    CHECK_FALSE(canon.oversized);

    // Empty message with a zero limit: not oversized.
    const auto empty = read_data(".\r\n", 0);
    CHECK(empty.complete);
    CHECK_FALSE(empty.oversized);
}

// ---- stuffed -------------------------------------------------------------------------------

TEST_CASE("stuffed: DATA framing of content", "[smtp]") {
    CHECK(stuffed("") == ".\r\n");
    CHECK(stuffed("a\r\n") == "a\r\n.\r\n");
    CHECK(stuffed("a") == "a\r\n.\r\n");  // a final line end added
    CHECK(stuffed("a\r\nb") == "a\r\nb\r\n.\r\n");
    CHECK(stuffed("\r\n") == "\r\n.\r\n");
    CHECK(stuffed(".") == "..\r\n.\r\n");
    CHECK(stuffed(".\r\n") == "..\r\n.\r\n");
    CHECK(stuffed("a\r\n.b\r\n..c\r\n") == "a\r\n..b\r\n...c\r\n.\r\n");
    CHECK(stuffed("a.b\r\n") == "a.b\r\n.\r\n");
    // Bare CR and LF normalised, and the lines after them stuffed too.
    CHECK(stuffed("a\nb") == "a\r\nb\r\n.\r\n");
    CHECK(stuffed("a\rb") == "a\r\nb\r\n.\r\n");
    CHECK(stuffed("a\n.\n") == "a\r\n..\r\n.\r\n");
    CHECK(stuffed("a\r.\r") == "a\r\n..\r\n.\r\n");
    CHECK(stuffed("a\n.\r\nMAIL") == "a\r\n..\r\nMAIL\r\n.\r\n");
    CHECK(stuffed("\r\r\n\n") == "\r\n\r\n\r\n.\r\n");
    CHECK(stuffed("a\r") == "a\r\n.\r\n");
    CHECK(stuffed("a\n") == "a\r\n.\r\n");
}

TEST_CASE("stuffed: DataReader reads back CRLF content", "[smtp]") {
    const std::string long_line(5000, 'x');
    const std::vector<std::string> samples = {
        "",
        "a\r\n",
        "a\r\nb\r\n",
        "\r\n",
        "\r\n\r\n\r\n",
        ".\r\n",
        "..\r\n",
        "...\r\n",
        ".x\r\n",
        ". \r\n",
        "a\r\n.\r\nb\r\n",
        "a\r\n.\r\n.\r\n",
        "\r\n.\r\n",
        "From: a@b\r\nSubject: x\r\n\r\n.leading dot\r\n..two\r\n\r\nend.\r\n",
        long_line + "\r\n" + "." + long_line + "\r\n",
        std::string("bin\0ary\r\n\xff\xfe\r\n", 13),
    };
    for (const auto& x : samples) {
        INFO(x.substr(0, 40));
        const std::string wire = stuffed(x);
        CHECK(ends_with(wire, ".\r\n"));
        CHECK(canonical(wire));
        const auto r = read_data(wire + "RSET\r\n");
        CHECK(r.complete);
        CHECK(r.used == wire.size());
        CHECK(r.content == x);
        CHECK(r.size == x.size());
        CHECK_FALSE(r.oversized);
    }
}

// ---- BDAT ----------------------------------------------------------------------------------

TEST_CASE("parse_bdat", "[smtp]") {
    auto b = parse_bdat("100");
    REQUIRE(b);
    CHECK(b->size == 100);
    CHECK_FALSE(b->last);

    b = parse_bdat("100 LAST");
    REQUIRE(b);
    CHECK(b->size == 100);
    CHECK(b->last);

    b = parse_bdat("100 last");
    REQUIRE(b);
    CHECK(b->last);

    b = parse_bdat("0 LAST");
    REQUIRE(b);
    CHECK(b->size == 0);
    CHECK(b->last);

    b = parse_bdat("18446744073709551615");
    REQUIRE(b);
    CHECK(b->size == std::numeric_limits<std::uint64_t>::max());

    for (const char* bad : {"", "x", "100 MORE", "-1", "+1", "100  LAST", "100 ", " 100", "100 LAST ", "100 LAST x",
                            "1e3", "0x10", "100LAST", "99999999999999999999999", "18446744073709551616",
                            "99999999999999999999999 LAST"}) {
        INFO(bad);
        CHECK_FALSE(parse_bdat(bad));
    }
}

// ---- MAIL / RCPT parameters ----------------------------------------------------------------

TEST_CASE("path_of", "[smtp]") {
    CHECK(path_of("FROM:<a@b> SIZE=5") == std::optional<std::string>("a@b"));
    CHECK(path_of("TO:<x@y.example>") == std::optional<std::string>("x@y.example"));
    CHECK(path_of("FROM:<>") == std::optional<std::string>(""));
    CHECK(path_of("FROM: <a@b>") == std::optional<std::string>("a@b"));
    CHECK_FALSE(path_of("FROM:a@b"));
    CHECK_FALSE(path_of("FROM:<a@b"));
    CHECK_FALSE(path_of(""));
    CHECK_FALSE(path_of("FROM:a@b>"));
}

TEST_CASE("declared_size", "[smtp]") {
    CHECK(declared_size("FROM:<a@b> SIZE=12345") == std::optional<std::uint64_t>(12345));
    CHECK(declared_size("FROM:<a@b> size=7") == std::optional<std::uint64_t>(7));
    CHECK(declared_size("FROM:<a@b> BODY=8BITMIME SIZE=99 SMTPUTF8") == std::optional<std::uint64_t>(99));
    CHECK(declared_size("FROM:<> SIZE=0") == std::optional<std::uint64_t>(0));
    CHECK_FALSE(declared_size("FROM:<a@b>"));
    CHECK_FALSE(declared_size("FROM:<a@b> BODY=8BITMIME"));
    CHECK_FALSE(declared_size("FROM:<a@b> SIZE=abc"));
    CHECK_FALSE(declared_size("FROM:<a@b> SIZE="));
    CHECK_FALSE(declared_size("FROM:<a@b> SIZE=-1"));
    CHECK_FALSE(declared_size("FROM:<a@b> SIZE=12x"));
    CHECK_FALSE(declared_size("FROM:<a@b> SIZE=99999999999999999999999"));
    CHECK_FALSE(declared_size("FROM:<a@b> XSIZE=5"));
}
