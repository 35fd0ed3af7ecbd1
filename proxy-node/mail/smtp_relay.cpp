#include "mail/smtp_relay.hpp"

#include "certs/names.hpp"
#include "inspect/relay_policy.hpp"
#include "inspect/verdict_wait.hpp"
#include "mail/mime.hpp"
#include "mail/smtp_protocol.hpp"

#include <algorithm>
#include <memory>
#include <optional>
#include <span>

// GCC 12 reports a false -Wmismatched-new-delete on large coroutine frames (see
// inspect/inspecting_relay.cpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace proxy::mail {

namespace {

using asio::awaitable;

constexpr std::size_t kReadChunk = 16 * 1024;
constexpr std::size_t kFeedChunk = 64 * 1024;
constexpr std::size_t kMaxReplyLines = 100;
constexpr std::size_t kMaxMimeDepth = 16;
// Commands the node refuses itself (malformed lines) before it ends the session, as MTAs
// do (Postfix: smtpd_hard_error_limit).
constexpr int kMaxBadCommands = 20;
// The rule of a message whose MIME structure is refused (too many parts, too deep).
constexpr std::string_view kMimeRule = "mime_structure";

enum class Got { line, closed, too_long };

struct Side {
    tls::ByteStream* stream;
    std::uint64_t* bytes;  // read from this side
    std::string buf;       // read, not yet used
    std::size_t scanned = 0;  // of buf, known to hold no line end
};

// A command line the node passes on: printable ASCII and tabs only. A CR or NUL inside a line
// could end it for the server where it does not for the node.
bool clean_line(std::string_view line) {
    return std::all_of(line.begin(), line.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u == '\t' || (u >= 0x20 && u != 0x7f);
    });
}

class Relay {
public:
    Relay(tls::ByteStream& client, tls::ByteStream& upstream, SmtpLinks& links, const SmtpParams& p)
        : client_{&client, &p.bytes_client_to_upstream, {}, 0},
          upstream_{&upstream, &p.bytes_upstream_to_client, {}, 0},
          links_(links),
          p_(p),
          cfg_(p.config),
          name_(p.server_name) {}

    awaitable<SmtpOutcome> run() {
        out_.inspected = p_.inspector != nullptr;
        links_.deadline(cfg_.command_timeout);
        const bool greeted = co_await read_reply();
        if (greeted) {
            learn_name();
            const bool sent = co_await send(client_, reply_.wire());
            if (sent) {
                while (co_await command()) {
                }
            } else {
                end(decision::kFailed, Reason::client_handshake_failed, "the client went away before the greeting");
            }
        }
        out_.server_name = name_;
        if (out_.decision == nullptr) end_normally();
        co_await client_.stream->close_notify();
        co_await upstream_.stream->close_notify();
        co_return out_;
    }

private:
    struct Transaction {
        bool active = false;  // MAIL accepted
        std::string from;
        std::size_t recipients = 0;
    };

    // --- one command -------------------------------------------------------------------------

    awaitable<bool> command() {
        links_.deadline(cfg_.command_timeout);
        const Got got = co_await read_line(client_, line_);
        if (got == Got::closed) {
            if (links_.expired())
                end(decision::kFailed, Reason::timeout,
                    "no command from the client in smtp.command_timeout_seconds (" +
                        std::to_string(cfg_.command_timeout.count()) + ")");
            co_return false;
        }
        if (got == Got::too_long) {
            co_await send(client_, "500 5.5.2 Line too long\r\n");
            end(decision::kBlocked, Reason::malformed_smtp,
                "a command line from the client over smtp.max_line_bytes (" + std::to_string(cfg_.max_line_bytes) + ")");
            co_return false;
        }
        if (!clean_line(line_)) {
            const bool more = co_await bad_command("500 5.5.2 Syntax error: control characters in the command line");
            co_return more;
        }
        cmd_ = parse_command(line_);
        const std::string& v = cmd_.verb;
        if (v == "EHLO" || v == "HELO") co_return co_await hello();
        if (v == "STARTTLS") co_return co_await starttls();
        if (v == "MAIL") co_return co_await mail();
        if (v == "RCPT") {
            if (!co_await pass()) co_return false;
            if (reply_.positive() && txn_.active) ++txn_.recipients;
            co_return true;
        }
        if (v == "RSET") {
            txn_ = {};
            co_return co_await pass();
        }
        if (v == "DATA") co_return co_await data();
        if (v == "BDAT") co_return co_await bdat();
        if (v == "QUIT") {
            co_await pass();
            co_return false;
        }
        // AUTH and its continuation lines, NOOP, VRFY, HELP, ...: the server answers.
        co_return co_await pass();
    }

    awaitable<bool> bad_command(std::string_view reply) {
        if (++bad_commands_ > kMaxBadCommands) {
            co_await send(client_, "421 4.7.0 Too many errors, closing the connection\r\n");
            end(decision::kBlocked, Reason::malformed_smtp,
                "the client sent more than " + std::to_string(kMaxBadCommands) + " malformed commands");
            co_return false;
        }
        const bool ok = co_await send(client_, std::string(reply) + "\r\n");
        co_return ok;
    }

    // The command line to the server, its reply to the client.
    awaitable<bool> pass() {
        if (!co_await ask_server(line_)) co_return false;
        const bool ok = co_await send(client_, reply_.wire());
        co_return ok;
    }

    awaitable<bool> hello() {
        const bool ehlo = cmd_.verb == "EHLO";
        if (!co_await ask_server(line_)) co_return false;
        txn_ = {};
        if (!ehlo || !reply_.positive()) {
            const bool ok = co_await send(client_, reply_.wire());
            co_return ok;
        }
        ext_ = parse_extensions(reply_);
        ehlo_seen_ = true;
        bool offer = false;
        if (!tls_) {
            if (ext_.starttls) {
                offer = true;
            } else if (!cfg_.no_starttls_plaintext) {
                ++p_.metrics.mail.no_starttls;
                co_await send(client_, "421 4.7.0 " + shown_name() +
                                           " offers no STARTTLS, and mail is not relayed to it in clear; try again later\r\n");
                co_await send(upstream_, "QUIT\r\n");
                end(decision::kBlocked, Reason::no_starttls,
                    "the server offers no STARTTLS (smtp.no_starttls = \"refuse\"); the client got 421");
                co_return false;
            } else if (!plaintext_noted_) {
                plaintext_noted_ = true;
                ++p_.metrics.mail.no_starttls;
                note("the server offers no STARTTLS: relayed in clear by smtp.no_starttls = \"plaintext\"");
            }
        }
        offered_starttls_ = offer;
        ClientOffer o;
        o.starttls = offer;
        o.max_message_bytes = cfg_.max_message_bytes;
        const bool ok = co_await send(client_, client_ehlo_reply(reply_, o).wire());
        co_return ok;
    }

    // --- STARTTLS ----------------------------------------------------------------------------

    awaitable<bool> starttls() {
        if (tls_) co_return co_await bad_command("503 5.5.1 TLS is already active");
        if (!cmd_.args.empty()) co_return co_await bad_command("501 5.5.4 Syntax: STARTTLS");
        if (!ehlo_seen_) co_return co_await bad_command("503 5.5.1 Send EHLO first");
        if (!offered_starttls_) co_return co_await bad_command("454 4.7.0 TLS not available");
        // Whatever followed STARTTLS in the same read was sent before the handshake: in clear,
        // open to injection by anyone on the path. It is not executed after the handshake.
        if (!client_.buf.empty()) {
            ++p_.metrics.mail.injection_discarded;
            note("discarded " + std::to_string(client_.buf.size()) +
                 " bytes the client sent after STARTTLS, before its TLS handshake (command injection)");
            client_.buf.clear();
            client_.scanned = 0;
        }
        if (!co_await ask_server("STARTTLS")) co_return false;
        if (reply_.code != 220 && !cfg_.no_starttls_plaintext) {
            // It offered STARTTLS but will not do it: as a server without it.
            ++p_.metrics.mail.no_starttls;
            co_await send(client_, "421 4.7.0 " + shown_name() + " refused STARTTLS, and mail is not relayed to it in "
                                                                  "clear; try again later\r\n");
            end(decision::kBlocked, Reason::no_starttls,
                "the server answered STARTTLS with " + std::to_string(reply_.code) +
                    " (smtp.no_starttls = \"refuse\"); the client got 421");
            co_return false;
        }
        if (reply_.code != 220) {
            // Still in clear with both (smtp.no_starttls = "plaintext"): the client is told
            // TLS failed and decides.
            note("the server answered STARTTLS with " + std::to_string(reply_.code));
            const bool ok = co_await send(client_, "454 4.7.0 TLS not available: the mail server answered STARTTLS with " +
                                                       std::to_string(reply_.code) + "\r\n");
            co_return ok;
        }
        if (!upstream_.buf.empty()) {
            ++p_.metrics.mail.injection_discarded;
            note("discarded " + std::to_string(upstream_.buf.size()) +
                 " bytes the server sent after its 220 to STARTTLS, before the TLS handshake (response injection)");
            upstream_.buf.clear();
            upstream_.scanned = 0;
        }
        const bool opportunistic = tls_policy_for(cfg_, name_) == SmtpSection::TlsPolicy::opportunistic;
        up_ = co_await links_.upstream_tls(name_, opportunistic);
        if (up_.stream == nullptr) {
            ++p_.metrics.mail.upstream_tls_refused;
            co_await send(client_, "421 4.7.0 TLS with the mail server failed (" + std::string(code(up_.reason)) +
                                       "); try again later\r\n");
            const bool failure = up_.reason == Reason::timeout || up_.reason == Reason::handshake_failed;
            end(failure ? decision::kFailed : decision::kBlocked, up_.reason,
                "STARTTLS with " + shown_name() + ": " + up_.failure + "; the client got 421");
            co_return false;
        }
        upstream_.stream = up_.stream;
        if (!up_.note.empty()) {
            ++p_.metrics.mail.opportunistic;
            note("opportunistic TLS: the server's certificate failed validation (" + up_.note + ")");
        }
        std::vector<std::string> names = up_.names;
        if (names.empty() && plausible_dns_name(name_) && !is_ip_literal(name_)) names.push_back(name_);
        if (!co_await send(client_, "220 2.0.0 Ready to start TLS\r\n")) co_return false;
        std::string why;
        tls::ByteStream* secured = co_await links_.client_tls(names, why);
        if (secured == nullptr) {
            end(decision::kFailed, links_.expired() ? Reason::timeout : Reason::client_handshake_failed, why);
            co_return false;
        }
        client_.stream = secured;
        tls_ = true;
        ++p_.metrics.mail.starttls;
        // Both forget the session so far (RFC 3207 4.2): the client greets again, and that
        // EHLO goes to the server too.
        ehlo_seen_ = false;
        offered_starttls_ = false;
        txn_ = {};
        co_return true;
    }

    // --- the mail transaction ----------------------------------------------------------------

    awaitable<bool> mail() {
        if (const auto size = declared_size(cmd_.args); size && *size > cfg_.max_message_bytes) {
            const bool ok = co_await send(client_, "552 5.3.4 Message size exceeds the limit of " +
                                                       std::to_string(cfg_.max_message_bytes) + " bytes\r\n");
            co_return ok;
        }
        if (!co_await pass()) co_return false;
        if (reply_.positive()) {
            txn_ = {};
            txn_.active = true;
            txn_.from = path_of(cmd_.args).value_or("");
        }
        co_return true;
    }

    // A reply for DATA or BDAT without a transaction to carry; nullptr when there is one.
    const char* no_transaction() const {
        if (!txn_.active) return "503 5.5.1 MAIL first";
        if (txn_.recipients == 0) return "554 5.5.1 No valid recipients";
        return nullptr;
    }

    awaitable<bool> data() {
        if (const char* refused = no_transaction()) co_return co_await bad_command(refused);
        if (!co_await send(client_, "354 End data with <CR><LF>.<CR><LF>\r\n")) co_return false;
        links_.deadline(cfg_.data_timeout);
        reader_ = std::make_unique<DataReader>(cfg_.max_message_bytes);
        for (;;) {
            const std::size_t used =
                reader_->take({reinterpret_cast<const std::uint8_t*>(client_.buf.data()), client_.buf.size()});
            client_.buf.erase(0, used);
            client_.scanned = 0;
            if (reader_->complete()) break;
            if (!co_await read_more(client_)) {
                end(decision::kFailed, links_.expired() ? Reason::timeout : Reason::malformed_smtp,
                    links_.expired() ? "a message's content took longer than smtp.data_timeout_seconds"
                                     : "the client closed in the middle of a message");
                co_return false;
            }
        }
        framing_ = "DATA";
        content_ = std::move(reader_->content());
        const bool over = reader_->oversized();
        const std::uint64_t size = reader_->size();
        reader_.reset();
        co_return co_await deliver(over, size);
    }

    awaitable<bool> bdat() {
        const auto chunk = parse_bdat(cmd_.args);
        if (!chunk) {
            // Where its bytes end is unknown: the session cannot go on.
            co_await send(client_, "501 5.5.4 Syntax: BDAT size [LAST]\r\n");
            end(decision::kBlocked, Reason::malformed_smtp, "a malformed BDAT command");
            co_return false;
        }
        links_.deadline(cfg_.data_timeout);
        const char* refused = ext_.chunking ? no_transaction() : "503 5.5.1 CHUNKING not offered";
        if (!bdat_open_) {
            content_.clear();
            bdat_size_ = 0;
        }
        bdat_open_ = refused == nullptr;
        std::uint64_t left = chunk->size;
        while (left > 0) {
            if (client_.buf.empty() && !co_await read_more(client_)) {
                end(decision::kFailed, links_.expired() ? Reason::timeout : Reason::malformed_smtp,
                    "the client closed in the middle of a BDAT chunk");
                co_return false;
            }
            const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, client_.buf.size()));
            if (bdat_open_ && bdat_size_ + n <= cfg_.max_message_bytes) content_.append(client_.buf, 0, n);
            if (bdat_open_) bdat_size_ += n;
            client_.buf.erase(0, n);
            client_.scanned = 0;
            left -= n;
        }
        if (refused != nullptr) co_return co_await bad_command(refused);
        if (!chunk->last) {
            const bool ok = co_await send(client_, "250 2.0.0 " + std::to_string(chunk->size) + " octets received\r\n");
            co_return ok;
        }
        bdat_open_ = false;
        framing_ = "BDAT";
        co_return co_await deliver(bdat_size_ > cfg_.max_message_bytes, bdat_size_);
    }

    // The whole message is here (content_): inspected, then sent to the server or refused.
    awaitable<bool> deliver(bool oversized, std::uint64_t size) {
        mrec_ = {};
        mrec_.client = p_.client;
        mrec_.server = name_;
        mrec_.mail_from = txn_.from;
        mrec_.recipients = txn_.recipients;
        mrec_.size = size;
        mrec_.framing = framing_;
        mrec_.tls = tls_;
        txn_ = {};
        if (oversized) {
            const bool ok = co_await refuse("552 5.3.4 Message size exceeds the limit of " +
                                                std::to_string(cfg_.max_message_bytes) + " bytes",
                                            "refused", "over smtp.max_message_bytes (" +
                                                           std::to_string(cfg_.max_message_bytes) + ")");
            co_return ok;
        }
        co_await inspect_message();
        if (verdict_.blocked()) {
            const bool unavailable = verdict_.rule == inspect::kEngineUnavailableRule;
            mrec_.rule = verdict_.rule;
            if (!unavailable) p_.metrics.inspection.count_block(verdict_.rule);
            const std::string why = verdict_.note.empty() ? "rule " + verdict_.rule : verdict_.note;
            if (unavailable) {
                const bool ok = co_await refuse("451 4.7.1 The message could not be inspected (the inspection engine "
                                                "is unavailable); try again later",
                                                "refused", why);
                co_return ok;
            }
            const bool ok =
                co_await refuse("554 5.7.1 Message refused by content inspection (rule " + verdict_.rule + ")", "blocked", why);
            co_return ok;
        }
        if (framing_ == "BDAT" && ext_.chunking) {
            const std::string head = "BDAT " + std::to_string(content_.size()) + " LAST\r\n";
            if (!co_await send(upstream_, head + content_)) co_return co_await lost_server();
        } else {
            if (!co_await ask_server("DATA")) co_return false;
            if (reply_.code != 354) {
                mrec_.decision = "rejected";
                mrec_.detail = "the server answered DATA with " + std::to_string(reply_.code);
                co_return co_await answer_message(reply_);
            }
            if (!co_await send(upstream_, stuffed(content_))) co_return co_await lost_server();
        }
        content_.clear();
        content_.shrink_to_fit();
        links_.deadline(cfg_.data_timeout);
        if (!co_await read_reply()) co_return false;
        mrec_.decision = reply_.positive() ? "relayed" : "rejected";
        if (!reply_.positive()) mrec_.detail = "the server refused the message with " + std::to_string(reply_.code);
        co_return co_await answer_message(reply_);
    }

    // The node refuses the message: the server's transaction is reset (it had the envelope),
    // the client told why.
    awaitable<bool> refuse(const std::string& reply_ref, const char* decision, const std::string& detail_ref) {
        const std::string reply = reply_ref;
        const std::string detail = detail_ref;
        content_.clear();
        content_.shrink_to_fit();
        mrec_.decision = decision;
        mrec_.detail = detail;
        if (!co_await ask_server("RSET")) co_return false;
        Reply r;
        r.code = std::stoi(reply.substr(0, 3));
        r.lines.push_back(reply.substr(4));
        co_return co_await answer_message(r);
    }

    awaitable<bool> answer_message(const Reply& r) {
        mrec_.reply = r.code;
        auto& m = p_.metrics.mail;
        if (mrec_.decision == "relayed") ++m.relayed;
        else if (mrec_.decision == "blocked") ++m.blocked;
        else if (mrec_.decision == "refused") ++m.refused;
        else ++m.rejected;
        ++(mrec_.decision == "relayed" ? relayed_ : refused_);
        p_.log.mail(mrec_);
        const bool ok = co_await send(client_, r.wire());
        co_return ok;
    }

    // --- inspection --------------------------------------------------------------------------

    // Every MIME part through the Inspector, in order, until one blocks; verdict_ says.
    awaitable<void> inspect_message() {
        verdict_ = inspect::Verdict::allow();
        if (p_.inspector == nullptr) co_return;
        MimeLimits limits;
        limits.max_parts = cfg_.max_mime_parts;
        limits.max_depth = kMaxMimeDepth;
        mime_ = parse_message(content_, limits);
        mrec_.parts = mime_.parts.size();
        if (!mime_.error.empty()) {
            verdict_ = inspect::Verdict::block(std::string(kMimeRule), "MIME structure refused: " + mime_.error);
            co_return;
        }
        for (part_ = 0; part_ < mime_.parts.size(); ++part_) {
            co_await inspect_part();
            if (verdict_.blocked()) break;
        }
        mime_ = {};
    }

    awaitable<void> inspect_part() {
        const MimePart& part = mime_.parts[part_];
        inspect::MessageInfo info;
        info.direction = inspect::Direction::request;
        info.carrier = inspect::Carrier::mail;
        info.host = name_;
        info.method = "SMTP";
        info.target = part.filename;
        info.content_type = part.content_type;
        info.content_length = part.body.size();
        info.no_body = part.body.empty();
        std::unique_ptr<inspect::Inspection> inspection = p_.inspector->begin(info);
        verdict_ = inspect::Verdict::allow();
        if (!inspection) co_return;
        ++p_.metrics.inspection.requests;
        p_.metrics.inspection.request_bytes += part.body.size();
        const auto* bytes = reinterpret_cast<const std::uint8_t*>(part.body.data());
        bool decided = false;
        for (std::size_t at = 0; at < part.body.size() && !decided; at += kFeedChunk) {
            const std::size_t n = std::min(kFeedChunk, part.body.size() - at);
            verdict_ = inspect::fail_closed(inspection->body({bytes + at, n}));
            if (verdict_.blocked()) co_return;
            decided = verdict_.kind == inspect::Verdict::Kind::allow;
            if (!decided) co_await inspect::engine_ready(*inspection, p_.verdict_timeout);
        }
        if (!decided) verdict_ = co_await inspect::final_verdict(*inspection, p_.verdict_timeout);
        if (verdict_.rewrite) verdict_ = inspect::refuse_rewrite(verdict_, "a mail part is relayed only unmodified");
    }

    // --- lines and replies -------------------------------------------------------------------

    awaitable<Got> read_line(Side& s, std::string& out) {
        for (;;) {
            const std::size_t nl = s.buf.find('\n', s.scanned);
            if (nl != std::string::npos) {
                const std::size_t len = nl > 0 && s.buf[nl - 1] == '\r' ? nl - 1 : nl;
                if (len > cfg_.max_line_bytes) co_return Got::too_long;
                out.assign(s.buf, 0, len);
                s.buf.erase(0, nl + 1);
                s.scanned = 0;
                co_return Got::line;
            }
            s.scanned = s.buf.size();
            if (s.buf.size() > cfg_.max_line_bytes) co_return Got::too_long;
            if (!co_await read_more(s)) co_return Got::closed;
        }
    }

    awaitable<bool> read_more(Side& s) {
        const std::size_t had = s.buf.size();
        s.buf.resize(had + kReadChunk);
        tls::IoStatus st = tls::IoStatus::ok;
        const std::size_t n =
            co_await s.stream->read_some({reinterpret_cast<std::uint8_t*>(s.buf.data()) + had, kReadChunk}, st);
        s.buf.resize(had + n);
        *s.bytes += n;
        co_return n > 0;
    }

    awaitable<bool> send(Side& s, const std::string& text) {
        const auto st = co_await s.stream->write_all({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
        co_return st == tls::IoStatus::ok;
    }

    // A command to the server, its reply in reply_; false (the session ends) when the server
    // is gone or does not speak SMTP.
    awaitable<bool> ask_server(std::string_view line) {
        if (!co_await send(upstream_, std::string(line) + "\r\n")) co_return co_await lost_server();
        const bool ok = co_await read_reply();
        co_return ok;
    }

    awaitable<bool> read_reply() {
        replies_ = {};
        for (std::size_t lines = 0;; ++lines) {
            const Got got = co_await read_line(upstream_, uline_);
            if (got == Got::closed) co_return co_await lost_server();
            if (got == Got::too_long || lines >= kMaxReplyLines) {
                co_await send(client_, "421 4.3.0 The mail server's reply was refused; try again later\r\n");
                end(decision::kFailed, Reason::malformed_smtp, "a reply from the server over smtp.max_line_bytes or " +
                                                                   std::to_string(kMaxReplyLines) + " lines");
                co_return false;
            }
            const bool complete = replies_.feed(uline_);
            if (!replies_.error().empty()) {
                co_await send(client_, "421 4.3.0 The mail server does not speak SMTP; try again later\r\n");
                end(decision::kFailed, Reason::malformed_smtp, "the server's reply: " + replies_.error());
                co_return false;
            }
            if (complete) break;
        }
        reply_ = replies_.take();
        co_return true;
    }

    // The server closed, timed out or failed: the client gets a 421 (its mail stays queued).
    awaitable<bool> lost_server() {
        co_await send(client_, "421 4.4.2 The mail server closed the connection; try again later\r\n");
        end(decision::kFailed, links_.expired() ? Reason::timeout : Reason::connect_failed,
            links_.expired() ? "the server did not answer in time" : "the server closed the connection");
        co_return false;
    }

    // --- bookkeeping -------------------------------------------------------------------------

    void learn_name() {
        if (!name_from_greeting()) return;
        if (reply_.lines.empty()) return;
        const std::string first = normalise_name(reply_.lines.front().substr(0, reply_.lines.front().find(' ')));
        if (plausible_dns_name(first) && first.front() != '*' && !is_ip_literal(first) &&
            first.find('.') != std::string::npos)
            name_ = first;
    }
    // Transparently only the address is known: the server's greeting names it.
    bool name_from_greeting() const { return is_ip_literal(p_.server_name); }

    std::string shown_name() const { return name_.empty() ? std::string("the mail server") : name_; }

    void note(const std::string& what) {
        if (!notes_.empty()) notes_ += "; ";
        notes_ += what;
    }

    void end(const char* decision, Reason reason, const std::string& detail) {
        if (out_.decision != nullptr) return;
        out_.decision = decision;
        out_.reason = reason;
        out_.detail = notes_.empty() ? detail : detail + "; " + notes_;
    }

    void end_normally() {
        std::string summary = std::to_string(relayed_) + " message(s) relayed, " + std::to_string(refused_) +
                              " refused" + (tls_ ? "" : "; in clear");
        end(tls_ ? decision::kIntercepted : decision::kProxied, Reason::none, summary);
    }

    Side client_;
    Side upstream_;
    SmtpLinks& links_;
    const SmtpParams& p_;
    const SmtpSection& cfg_;
    std::string name_;
    SmtpOutcome out_;
    std::string notes_;

    std::string line_, uline_;
    Command cmd_;
    ReplyReader replies_;
    Reply reply_;
    Extensions ext_;
    bool ehlo_seen_ = false;
    bool offered_starttls_ = false;
    bool tls_ = false;
    bool plaintext_noted_ = false;
    int bad_commands_ = 0;
    SmtpLinks::UpstreamTls up_;

    Transaction txn_;
    std::unique_ptr<DataReader> reader_;
    std::string content_;
    std::string framing_;
    bool bdat_open_ = false;  // BDAT chunks of one message are being collected
    std::uint64_t bdat_size_ = 0;
    MailRecord mrec_;
    MimeResult mime_;
    std::size_t part_ = 0;
    inspect::Verdict verdict_;
    std::size_t relayed_ = 0, refused_ = 0;
};

}  // namespace

SmtpSection::TlsPolicy tls_policy_for(const SmtpSection& config, const std::string& server_name) {
    std::string_view name = server_name;
    for (;;) {
        if (auto it = config.tls_domains.find(std::string(name)); it != config.tls_domains.end()) return it->second;
        const auto dot = name.find('.');
        if (dot == std::string_view::npos) break;
        name.remove_prefix(dot + 1);
    }
    return config.tls;
}

awaitable<SmtpOutcome> smtp_relay(tls::ByteStream& client, tls::ByteStream& upstream, SmtpLinks& links,
                                  const SmtpParams& params) {
    auto relay = std::make_unique<Relay>(client, upstream, links, params);
    SmtpOutcome out = co_await relay->run();
    co_return out;
}

}  // namespace proxy::mail
