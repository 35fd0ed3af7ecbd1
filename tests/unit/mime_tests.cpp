// mail/mime: the leaf parts of a message, transfer-decoded, however the sender shaped them.

#include "mail/mime.hpp"

#include <catch2/catch_test_macros.hpp>

#include <cstdint>
#include <string>

using namespace proxy::mail;

namespace {

// Built at run time, as proxy-node's rule set does: no scanner should take the test binary
// for the test file.
std::string eicar() {
    std::string s = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$";
    s += "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
    return s;
}

std::string eicar_base64() {
    std::string s = "WDVPIVAlQEFQWzRcUFpYNTQoUF4pN0NDKTd9JEVJQ0FS";
    s += "LVNUQU5EQVJELUFOVElWSVJVUy1URVNULUZJTEUhJEgrSCo=";
    return s;
}

// Every LF as CRLF: the tests write messages with "\n" and send them as on the wire.
std::string crlf(std::string_view s) {
    std::string out;
    for (const char c : s) {
        if (c == '\n') out += '\r';
        out += c;
    }
    return out;
}

std::string base64(std::string_view in) {
    static constexpr char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const auto n = static_cast<std::uint32_t>((static_cast<unsigned char>(in[i]) << 16) |
                                                  (static_cast<unsigned char>(in[i + 1]) << 8) |
                                                  static_cast<unsigned char>(in[i + 2]));
        for (int shift : {18, 12, 6, 0}) out += chars[(n >> shift) & 63];
        if ((i / 3 + 1) % 19 == 0) out += "\r\n";  // 76-column lines
    }
    if (i + 1 == in.size()) {
        const auto n = static_cast<std::uint32_t>(static_cast<unsigned char>(in[i]) << 16);
        out += chars[(n >> 18) & 63];
        out += chars[(n >> 12) & 63];
        out += "==";
    } else if (i + 2 == in.size()) {
        const auto n = static_cast<std::uint32_t>((static_cast<unsigned char>(in[i]) << 16) |
                                                  (static_cast<unsigned char>(in[i + 1]) << 8));
        out += chars[(n >> 18) & 63];
        out += chars[(n >> 12) & 63];
        out += chars[(n >> 6) & 63];
        out += '=';
    }
    return out;
}

// The body of a single-part message sent with `encoding`.
std::string decoded(std::string_view encoding, std::string_view body) {
    const auto r =
        parse_message("Content-Transfer-Encoding: " + std::string(encoding) + "\r\n\r\n" + std::string(body));
    REQUIRE(r.error.empty());
    REQUIRE(r.parts.size() == 1);
    return r.parts[0].body;
}

// `levels` multiparts, one inside the other, around a text/plain leaf, built in linear time.
std::string nested_multiparts(std::size_t levels) {
    std::string head, tail;
    for (std::size_t i = 0; i < levels; ++i) {
        const std::string b = "b" + std::to_string(i);
        head += "Content-Type: multipart/mixed; boundary=" + b + "\r\n\r\n--" + b + "\r\n";
        if (i < 20) tail = "\r\n--" + b + "--\r\n" + tail;  // deeper, the parts run to the end
    }
    return head + "Content-Type: text/plain\r\n\r\ndeep" + tail;
}

}  // namespace

TEST_CASE("a plain text message is one leaf at depth 0", "[mime]") {
    const auto r = parse_message(crlf(
        "From: a@example.com\nTo: b@example.com\nSubject: hello\nContent-Type: text/plain; charset=utf-8\n\n"
        "Hello\nWorld\n"));
    CHECK(r.error.empty());
    REQUIRE(r.parts.size() == 1);
    CHECK(r.parts[0].content_type == "text/plain");
    CHECK(r.parts[0].transfer_encoding == "7bit");
    CHECK(r.parts[0].filename.empty());
    CHECK(r.parts[0].body == "Hello\r\nWorld\r\n");
    CHECK(r.parts[0].depth == 0);
}

TEST_CASE("header fields: defaults, the first of a repeated field, a line that is not a field, no empty line",
          "[mime]") {
    auto r = parse_message(crlf("Subject: no type\n\nbody\n"));
    REQUIRE(r.parts.size() == 1);
    CHECK(r.parts[0].content_type == "text/plain");
    CHECK(r.parts[0].transfer_encoding == "7bit");
    CHECK(r.parts[0].body == "body\r\n");

    r = parse_message(crlf("Subject: x\nContent-Type : Text/HTML ; charset=x\n"
                           "Content-Type: application/pdf\n\n<b>\n"));
    REQUIRE(r.parts.size() == 1);
    CHECK(r.parts[0].content_type == "text/html");
    CHECK(r.parts[0].body == "<b>\r\n");

    // A line that is not a field ends the fields: the body starts there (the empty line left
    // out, as an evasion or by a careless sender), and it is inspected.
    r = parse_message(crlf("Content-Type: application/octet-stream\nnot a header line\nmore\n"));
    REQUIRE(r.parts.size() == 1);
    CHECK(r.parts[0].content_type == "application/octet-stream");
    CHECK(r.parts[0].body == "not a header line\r\nmore\r\n");

    // An invalid media type is text/plain (RFC 2045 5.2); a comment after the type is not part of it.
    CHECK(parse_message("Content-Type: garbage\r\n\r\nx").parts[0].content_type == "text/plain");
    CHECK(parse_message("Content-Type: image/gif (a comment)\r\n\r\nx").parts[0].content_type == "image/gif");

    // No empty line: all headers, an empty body.
    r = parse_message(crlf("Subject: x\nContent-Type: text/html"));
    REQUIRE(r.parts.size() == 1);
    CHECK(r.parts[0].content_type == "text/html");
    CHECK(r.parts[0].body.empty());

    // No headers at all: the body starts after the first (empty) line.
    r = parse_message("\r\nonly a body");
    REQUIRE(r.parts.size() == 1);
    CHECK(r.parts[0].body == "only a body");
}

TEST_CASE("an empty message is one empty text/plain leaf", "[mime]") {
    for (const char* message : {"", "\r\n", "\n"}) {
        CAPTURE(message);
        const auto r = parse_message(message);
        CHECK(r.error.empty());
        REQUIRE(r.parts.size() == 1);
        CHECK(r.parts[0].content_type == "text/plain");
        CHECK(r.parts[0].body.empty());
    }
}

TEST_CASE("multipart/mixed: a text part and a base64 attachment with a filename, decoded exactly", "[mime]") {
    const auto r = parse_message(crlf("MIME-Version: 1.0\n"
                                      "Content-Type: multipart/mixed; boundary=\"XYZ\"\n\n"
                                      "This is the preamble; it is ignored.\n"
                                      "--XYZ\n"
                                      "Content-Type: text/plain; charset=us-ascii\n\n"
                                      "See attached.\n"
                                      "--XYZ\n"
                                      "Content-Type: application/octet-stream; name=\"other.bin\"\n"
                                      "Content-Disposition: attachment; filename=\"eicar.com\"\n"
                                      "Content-Transfer-Encoding: base64\n\n") +
                                 eicar_base64() + crlf("\n--XYZ--\nThe epilogue, ignored.\n"));
    CHECK(r.error.empty());
    REQUIRE(r.parts.size() == 2);
    CHECK(r.parts[0].content_type == "text/plain");
    CHECK(r.parts[0].body == "See attached.");  // the CRLF before the delimiter belongs to it
    CHECK(r.parts[0].depth == 1);
    CHECK(r.parts[1].content_type == "application/octet-stream");
    CHECK(r.parts[1].filename == "eicar.com");
    CHECK(r.parts[1].transfer_encoding == "base64");
    CHECK(r.parts[1].body == eicar());
    CHECK(r.parts[1].depth == 1);

    // Without Content-Disposition the filename is Content-Type's name=.
    const auto named =
        parse_message(crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n"
                           "Content-Type: application/zip; name=payload.zip\n\nPK\n--b--\n"));
    REQUIRE(named.parts.size() == 1);
    CHECK(named.parts[0].filename == "payload.zip");
}

TEST_CASE("quoted-printable: =XX either case, soft line breaks, invalid '=' kept", "[mime]") {
    CHECK(decoded("quoted-printable", "a=3Db caf=C3=a9") == "a=b caf\xC3\xA9");
    CHECK(decoded("quoted-printable", "long li=\r\nne, and=\nLF, padded= \t\r\nbreak") ==
          "long line, andLF, paddedbreak");
    CHECK(decoded("quoted-printable", "=ZZ stays, = alone, =4") == "=ZZ stays, = alone, =4");
    CHECK(decoded("quoted-printable", "hard  \r\nbreak=") == "hard  \r\nbreak");
    CHECK(decoded("quoted-printable", "=\r") == "");
    CHECK(decoded("Quoted-Printable", "x=3D") == "x=");

    const auto r = parse_message(
        crlf("Content-Type: text/html\nContent-Transfer-Encoding: quoted-printable\n\n"
             "<a href=3D\"http://example.com/\">a very long line that the encoder wrapped =\nhere</a>\n"));
    REQUIRE(r.parts.size() == 1);
    CHECK(r.parts[0].transfer_encoding == "quoted-printable");
    CHECK(r.parts[0].body ==
          "<a href=\"http://example.com/\">a very long line that the encoder wrapped here</a>\r\n");
}

TEST_CASE(
    "base64: garbage, line breaks every 3 characters, concatenated encodings, a trailing partial quantum",
    "[mime]") {
    const std::string clean = eicar_base64();
    std::string mangled;
    for (std::size_t i = 0; i < clean.size(); ++i) {
        if (i % 3 == 0) mangled += "\r\n";
        if (i % 7 == 0) mangled += "!*#\x80 \t.";
        mangled += clean[i];
    }
    CHECK(decoded("base64", mangled) == eicar());
    CHECK(decoded("base64", "aGk=IHRoZXJl") == "hi there");
    CHECK(decoded("base64", "aGk=\r\naGk=\r\n") == "hihi");
    CHECK(decoded("base64", "aGk") == "hi");
    CHECK(decoded("base64", "aG") == "h");
    CHECK(decoded("base64", "aGVsbG8=a") == "hello");  // a lone sextet has no whole byte
    CHECK(decoded("base64", "====") == "");
}

TEST_CASE("uppercase BASE64 and Content-TYPE are recognised", "[mime]") {
    const auto r = parse_message(
        "Content-TYPE: Application/X-MSDownload; NAME=\"a.exe\"\r\n"
        "CONTENT-TRANSFER-ENCODING: BASE64\r\n\r\n" +
        eicar_base64() + "\r\n");
    REQUIRE(r.parts.size() == 1);
    CHECK(r.parts[0].content_type == "application/x-msdownload");
    CHECK(r.parts[0].transfer_encoding == "base64");
    CHECK(r.parts[0].filename == "a.exe");
    CHECK(r.parts[0].body == eicar());
}

TEST_CASE("unknown transfer encodings are returned as sent", "[mime]") {
    const auto r = parse_message("Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 a\r\n`\r\nend\r\n");
    REQUIRE(r.parts.size() == 1);
    CHECK(r.parts[0].transfer_encoding == "x-uuencode");
    CHECK(r.parts[0].body == "begin 644 a\r\n`\r\nend\r\n");
    CHECK(decoded("8bit", "caf\xC3\xA9=3D") == "caf\xC3\xA9=3D");
}

TEST_CASE("multipart/alternative nested in multipart/mixed: leaves in document order with their depth",
          "[mime]") {
    // The inner boundary starts with the outer one: only exact delimiter lines count.
    const auto r =
        parse_message(crlf("Content-Type: multipart/mixed; boundary=frontier\n\n"
                           "--frontier\n"
                           "Content-Type: multipart/alternative; boundary=frontier-2\n\n"
                           "--frontier-2\n"
                           "Content-Type: text/plain\n\nplain\n"
                           "--frontier-2\n"
                           "Content-Type: text/html\n\n<p>html</p>\n"
                           "--frontier-2--\n"
                           "--frontier\n"
                           "Content-Type: image/png\nContent-Transfer-Encoding: base64\nContent-Disposition: "
                           "inline; filename=dot.png\n\n"
                           "iVBORw0KGgo=\n"
                           "--frontier--\n"));
    CHECK(r.error.empty());
    REQUIRE(r.parts.size() == 3);
    CHECK(r.parts[0].content_type == "text/plain");
    CHECK(r.parts[0].body == "plain");
    CHECK(r.parts[0].depth == 2);
    CHECK(r.parts[1].content_type == "text/html");
    CHECK(r.parts[1].body == "<p>html</p>");
    CHECK(r.parts[1].depth == 2);
    CHECK(r.parts[2].content_type == "image/png");
    CHECK(r.parts[2].filename == "dot.png");
    CHECK(r.parts[2].body == "\x89PNG\r\n\x1a\n");
    CHECK(r.parts[2].depth == 1);
}

TEST_CASE("message/rfc822 attachments are opened as messages", "[mime]") {
    const auto r = parse_message(
        crlf("Content-Type: multipart/mixed; boundary=a\n\n"
             "--a\n"
             "Content-Type: text/plain\n\nForwarded below.\n"
             "--a\n"
             "Content-Type: message/rfc822\nContent-Disposition: attachment; filename=fwd.eml\n\n"
             "From: x@example.com\nSubject: inner\nContent-Type: multipart/mixed; boundary=b\n\n"
             "--b\n"
             "Content-Type: application/x-msdownload\nContent-Transfer-Encoding: base64\n"
             "Content-Disposition: attachment; filename=eicar.exe\n\n") +
        eicar_base64() + crlf("\n--b--\n--a--\n"));
    CHECK(r.error.empty());
    REQUIRE(r.parts.size() == 2);
    CHECK(r.parts[0].body == "Forwarded below.");
    CHECK(r.parts[0].depth == 1);
    CHECK(r.parts[1].content_type == "application/x-msdownload");
    CHECK(r.parts[1].filename == "eicar.exe");
    CHECK(r.parts[1].body == eicar());
    CHECK(r.parts[1].depth == 3);

    // A single-part inner message; message/global alike; an inner message sent base64-encoded
    // (RFC 2045 forbids it) is decoded before it is opened.
    const std::string inner = "Content-Transfer-Encoding: base64\r\n\r\n" + eicar_base64();
    for (const std::string& outer :
         {"Content-Type: message/rfc822\r\n\r\n" + inner, "Content-Type: message/global\r\n\r\n" + inner,
          "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64(inner)}) {
        CAPTURE(outer);
        const auto one = parse_message(outer);
        CHECK(one.error.empty());
        REQUIRE(one.parts.size() == 1);
        CHECK(one.parts[0].body == eicar());
        CHECK(one.parts[0].depth == 1);
    }
}

TEST_CASE("multipart/digest parts default to message/rfc822", "[mime]") {
    const auto r =
        parse_message(crlf("Content-Type: multipart/digest; boundary=d\n\n"
                           "--d\n\nSubject: one\n\nfirst\n"
                           "--d\nContent-Type: text/plain\n\nsecond\n"
                           "--d--\n"));
    REQUIRE(r.parts.size() == 2);
    CHECK(r.parts[0].content_type == "text/plain");
    CHECK(r.parts[0].body == "first");
    CHECK(r.parts[0].depth == 2);
    CHECK(r.parts[1].body == "second");
    CHECK(r.parts[1].depth == 1);
}

TEST_CASE("bare LF line ends", "[mime]") {
    const auto r = parse_message(
        "Content-Type: multipart/mixed;\n boundary=lf\n\n"
        "--lf\nContent-Type: text/plain\n\none\ntwo\n"
        "--lf\nContent-Transfer-Encoding: base64\nContent-Disposition: "
        "attachment;\n\tfilename=\"e.com\"\n\n" +
        eicar_base64() + "\n--lf--\n");
    CHECK(r.error.empty());
    REQUIRE(r.parts.size() == 2);
    CHECK(r.parts[0].body == "one\ntwo");
    CHECK(r.parts[1].filename == "e.com");
    CHECK(r.parts[1].body == eicar());
}

TEST_CASE("a missing closing delimiter: the last part runs to the end; empty parts are parts", "[mime]") {
    auto r =
        parse_message(crlf("Content-Type: multipart/mixed; boundary=b\n\n"
                           "--b\nContent-Type: text/plain\n\nfirst\n"
                           "--b\n\nlast part\nand no close\n"));
    CHECK(r.error.empty());
    REQUIRE(r.parts.size() == 2);
    CHECK(r.parts[0].body == "first");
    CHECK(r.parts[1].content_type == "text/plain");
    CHECK(r.parts[1].body == "last part\r\nand no close\r\n");

    r = parse_message(
        crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n--b\nContent-Type: text/html\n\nx\n--b--\n"));
    REQUIRE(r.parts.size() == 2);
    CHECK(r.parts[0].content_type == "text/plain");
    CHECK(r.parts[0].body.empty());
    CHECK(r.parts[1].content_type == "text/html");
    CHECK(r.parts[1].body == "x");
}

TEST_CASE("delimiter lines: transport padding allowed, anything else after the boundary is not one",
          "[mime]") {
    const auto r =
        parse_message(crlf("Content-Type: multipart/mixed; boundary=b\n\n"
                           "--b \t\n\none\n--bb\n -b\n--b--x\n"
                           "--b\n\ntwo\n"
                           "--b-- \n\nepilogue\n--b\n\nnot a part\n"));
    REQUIRE(r.parts.size() == 2);
    CHECK(r.parts[0].body == "one\r\n--bb\r\n -b\r\n--b--x");
    CHECK(r.parts[1].body == "two");
}

TEST_CASE("a quoted boundary with unusual characters, Content-Type folded over lines", "[mime]") {
    const std::string boundary = "'()+_,-./:=?";
    const auto r =
        parse_message(crlf("Subject: folded\n"
                           "Content-Type:\n multipart/mixed;\n\tboundary=\"'()+_,-./:=?\"\n  ; charset=x;\n\n"
                           "--" +
                           boundary +
                           "\nContent-Type: text/plain\n\nfirst\n"
                           "--" +
                           boundary +
                           "\nContent-Type:\n  application/pdf;\n  name=\"doc.pdf\"\n\n%PDF\n"
                           "--" +
                           boundary + "--\n"));
    CHECK(r.error.empty());
    REQUIRE(r.parts.size() == 2);
    CHECK(r.parts[0].body == "first");
    CHECK(r.parts[1].content_type == "application/pdf");
    CHECK(r.parts[1].filename == "doc.pdf");
    CHECK(r.parts[1].body == "%PDF");

    // Parameters: blanks around '=', a trailing ';', escapes in quoted-strings, keys in any case.
    const auto p = parse_message(
        crlf("Content-Type: multipart/mixed ; BOUNDARY = \"a\\\"b\" ;\n\n"
             "--a\"b\nContent-Disposition: attachment; filename = \"x\\\\y;z.exe\" ;\n\nx\n--a\"b--\n"));
    REQUIRE(p.parts.size() == 1);
    CHECK(p.parts[0].filename == "x\\y;z.exe");
}

TEST_CASE("RFC 2231 filenames: extended values and continuations", "[mime]") {
    auto filename = [](const std::string& disposition) {
        const auto r = parse_message("Content-Disposition: " + disposition + "\r\n\r\nx");
        REQUIRE(r.parts.size() == 1);
        return r.parts[0].filename;
    };
    CHECK(filename("attachment; filename*=utf-8''%e2%82%AC%20rates.pdf") == "\xE2\x82\xAC rates.pdf");
    CHECK(filename("attachment; filename*=UTF-8'en'report.pdf") == "report.pdf");
    CHECK(filename("attachment; filename*1=\"-2024\"; filename*0*=UTF-8''in%20voice; filename*2*=.p%64f") ==
          "in voice-2024.pdf");
    CHECK(filename("attachment; filename=\"decoy.txt\"; filename*=utf-8''real.exe") == "real.exe");
    CHECK(filename("attachment; filename*0=\"long\"; filename*1=\"name.exe\"") == "longname.exe");
    CHECK(filename("attachment; filename*=%zz") == "%zz");

    const auto r = parse_message("Content-Type: application/octet-stream; name*=''evil%2Eexe\r\n\r\nx");
    REQUIRE(r.parts.size() == 1);
    CHECK(r.parts[0].filename == "evil.exe");
}

TEST_CASE("a multipart that cannot be walked is one text/plain leaf with its body", "[mime]") {
    const std::string body = crlf("--other\nContent-Type: application/zip\n\nPK\n--other--\n");
    for (const std::string& type :
         {std::string("multipart/mixed; boundary=never"), std::string("multipart/mixed"),
          std::string("multipart/mixed; boundary=\"\"")}) {
        CAPTURE(type);
        const auto r = parse_message("Content-Type: " + type +
                                     "\r\nContent-Disposition: inline; filename=m\r\n\r\n" + body);
        CHECK(r.error.empty());
        REQUIRE(r.parts.size() == 1);
        CHECK(r.parts[0].content_type == "text/plain");
        CHECK(r.parts[0].filename == "m");
        CHECK(r.parts[0].body == body);
        CHECK(r.parts[0].depth == 0);
    }
    // Only a close delimiter, nothing opened: the same.
    const auto r = parse_message("Content-Type: multipart/mixed; boundary=b\r\n\r\nhidden\r\n--b--\r\n");
    REQUIRE(r.parts.size() == 1);
    CHECK(r.parts[0].body == "hidden\r\n--b--\r\n");
}

TEST_CASE("limits: more than max_parts leaves, deeper than max_depth", "[mime]") {
    auto parts = [](std::size_t n) {
        std::string m = "Content-Type: multipart/mixed; boundary=p\r\n\r\n";
        for (std::size_t i = 0; i < n; ++i) m += "--p\r\n\r\nx\r\n";
        return m + "--p--\r\n";
    };
    auto r = parse_message(parts(1000));
    CHECK(r.error.empty());
    CHECK(r.parts.size() == 1000);
    r = parse_message(parts(1001));
    CHECK(r.error == "more than 1000 MIME parts");
    CHECK(r.parts.size() == 1000);
    r = parse_message(parts(5), MimeLimits{.max_parts = 2, .max_depth = 16});
    CHECK(r.error == "more than 2 MIME parts");
    CHECK(r.parts.size() == 2);

    r = parse_message(nested_multiparts(16));
    CHECK(r.error.empty());
    REQUIRE(r.parts.size() == 1);
    CHECK(r.parts[0].body == "deep");
    CHECK(r.parts[0].depth == 16);
    r = parse_message(nested_multiparts(17));
    CHECK(r.error == "MIME parts nested more than 16 levels deep");
    CHECK(r.parts.empty());
    r = parse_message(nested_multiparts(100000));  // no deep recursion: the walk stops at the limit
    CHECK(r.error == "MIME parts nested more than 16 levels deep");

    // Leaves found before the limit are kept; nesting through message/rfc822 counts alike.
    std::string messages = "Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\n\r\nfirst\r\n--m\r\n";
    for (int i = 0; i < 17; ++i) messages += "Content-Type: message/rfc822\r\n\r\n";
    messages += "\r\ninnermost\r\n--m--\r\n";
    r = parse_message(messages);
    CHECK(r.error == "MIME parts nested more than 16 levels deep");
    REQUIRE(r.parts.size() == 1);
    CHECK(r.parts[0].body == "first");
}

TEST_CASE("5 MB messages are parsed in one pass", "[mime]") {
    std::string payload(3'700'000, '\0');
    std::uint32_t x = 12345;
    for (char& c : payload) {
        x = x * 1103515245u + 12345u;
        c = static_cast<char>(x >> 24);
    }
    std::string m = "Content-Type: multipart/mixed; boundary=big\r\n\r\n";
    for (int i = 0; i < 500; ++i) m += "--big\r\nContent-Type: text/plain\r\n\r\nline\r\n";
    m += "--big\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64(payload) + "\r\n--big--\r\n";
    REQUIRE(m.size() > 5'000'000);
    auto r = parse_message(m);
    CHECK(r.error.empty());
    REQUIRE(r.parts.size() == 501);
    CHECK(r.parts.back().body == payload);

    // A long boundary and 5 MB of lines that almost match it.
    const std::string boundary(5000, 'z');
    const std::string near = "--" + boundary.substr(1) + "y\r\n";
    std::string hostile = "Content-Type: multipart/mixed; boundary=" + boundary + "\r\n\r\n";
    while (hostile.size() < 5'000'000) hostile += near;
    r = parse_message(hostile);
    REQUIRE(r.parts.size() == 1);
    CHECK(r.parts[0].content_type == "text/plain");

    // 5 MB of '=' in quoted-printable, of folded header lines, and of one line without a line end.
    r = parse_message("Content-Transfer-Encoding: quoted-printable\r\n\r\n" + std::string(5'000'000, '='));
    REQUIRE(r.parts.size() == 1);
    CHECK(r.parts[0].body.size() == 4'999'999);
    std::string folded = "Content-Type: text/plain";
    while (folded.size() < 5'000'000) folded += "\r\n ; a=b";
    r = parse_message(folded + "\r\n\r\nx");
    REQUIRE(r.parts.size() == 1);
    CHECK(r.parts[0].body == "x");
    r = parse_message("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
                      std::string(5'000'000, 'a'));
    REQUIRE(r.parts.size() == 1);
    CHECK(r.parts[0].body.size() == 5'000'000);  // no field, no empty line: all body
}
