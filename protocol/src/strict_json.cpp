#include "strict_json.hpp"

#include "protocol/limits.hpp"

#include <optional>
#include <utility>
#include <vector>

namespace protocol::detail {

namespace {

using nlohmann::json;

// Longest piece of client text quoted back in an error message.
constexpr std::size_t kMaxQuotedBytes = 80;

// Builds the document like nlohmann's own DOM parser, but can see what that parser hides:
// a key arriving twice in one object, and how deep the nesting goes.
class StrictDomBuilder {
public:
    using number_integer_t = json::number_integer_t;
    using number_unsigned_t = json::number_unsigned_t;
    using number_float_t = json::number_float_t;
    using string_t = json::string_t;
    using binary_t = json::binary_t;

    bool null() { return add(nullptr); }
    bool boolean(bool value) { return add(value); }
    bool number_integer(number_integer_t value) { return add(value); }
    bool number_unsigned(number_unsigned_t value) { return add(value); }
    bool number_float(number_float_t value, const string_t&) { return add(value); }
    bool string(string_t& value) { return add(std::move(value)); }
    bool binary(binary_t&) { return fail("binary values are not JSON"); }

    bool start_object(std::size_t) { return open(json::object()); }
    bool end_object() { return close(); }
    bool start_array(std::size_t) { return open(json::array()); }
    bool end_array() { return close(); }

    bool key(string_t& name) {
        if (open_.back()->contains(name))
            return fail("the key \"" + printable(name) +
                        "\" appears twice in one object; send each field once");
        pending_key_ = std::move(name);
        return true;
    }

    bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& ex) {
        // what() reads "[json.exception.parse_error.101] parse error at line 1, column 5: ...";
        // the bracketed id means nothing to a client.
        std::string_view reason = ex.what();
        if (auto end = reason.find("] "); end != std::string_view::npos) reason.remove_prefix(end + 2);
        return fail("body is not valid JSON (byte " + std::to_string(position) +
                    "): " + printable_reason(reason));
    }

    json take() { return std::move(root_); }
    const std::optional<std::string>& error() const { return error_; }

private:
    bool fail(std::string message) {
        if (!error_) error_ = std::move(message);
        return false;
    }

    // The parser's own wording may quote raw input; keep it readable but bounded.
    static std::string printable_reason(std::string_view reason) {
        std::string out;
        for (unsigned char c : reason.substr(0, 2 * kMaxQuotedBytes)) {
            out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
        }
        return out;
    }

    bool add(json value) {
        insert(std::move(value));
        return true;
    }

    json* insert(json value) {
        if (open_.empty()) {
            root_ = std::move(value);
            return &root_;
        }
        json& parent = *open_.back();
        if (parent.is_array()) {
            parent.push_back(std::move(value));
            return &parent.back();
        }
        // Pointers to open containers stay valid: a parent gains no other child while one
        // of its children is still open.
        return &(parent[pending_key_] = std::move(value));
    }

    bool open(json container) {
        if (open_.size() >= kMaxJsonDepth)
            return fail("JSON nesting is deeper than " + std::to_string(kMaxJsonDepth) +
                        " levels; this protocol needs at most 3");
        open_.push_back(insert(std::move(container)));
        return true;
    }
    bool close() {
        open_.pop_back();
        return true;
    }

    json root_;
    std::vector<json*> open_;
    std::string pending_key_;
    std::optional<std::string> error_;
};

}  // namespace

Decoded<json> parse_object(std::string_view body, std::size_t max_bytes) {
    if (body.size() > max_bytes)
        return Error{ErrorCode::body_too_large, "body is " + std::to_string(body.size()) +
                                                    " bytes; the limit is " + std::to_string(max_bytes)};
    if (body.empty()) return Error{ErrorCode::malformed_request, "body is empty; send a JSON object"};
    StrictDomBuilder builder;
    const bool ok = json::sax_parse(body, &builder, json::input_format_t::json, /*strict=*/true,
                                    /*ignore_comments=*/false);
    if (!ok || builder.error()) {
        return Error{ErrorCode::malformed_request, builder.error().value_or("body is not valid JSON")};
    }
    json doc = builder.take();
    if (!doc.is_object())
        return Error{ErrorCode::malformed_request,
                     "body must be a JSON object, not " + std::string(type_name(doc))};
    return doc;
}


std::string_view type_name(const json& value) {
    switch (value.type()) {
        case json::value_t::null:
            return "null";
        case json::value_t::object:
            return "an object";
        case json::value_t::array:
            return "an array";
        case json::value_t::string:
            return "a string";
        case json::value_t::boolean:
            return "a boolean";
        case json::value_t::number_integer:
        case json::value_t::number_unsigned:
            return "an integer";
        case json::value_t::number_float:
            return "a fractional number";
        case json::value_t::binary:
        case json::value_t::discarded:
            break;
    }
    return "an unsupported value";
}

std::string dump(const json& value) {
    return value.dump(-1, ' ', /*ensure_ascii=*/false, json::error_handler_t::replace);
}

}  // namespace protocol::detail
