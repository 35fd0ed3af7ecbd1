#include "websocket/handshake.hpp"

#include "http/text.hpp"

namespace proxy::websocket {

namespace {

// Calls `f` with each comma-separated element of `list`, blanks trimmed, empty ones skipped.
template <typename F>
void each_element(std::string_view list, F&& f) {
    while (!list.empty()) {
        const std::size_t comma = list.find(',');
        const std::string_view item = http::trim_ows(list.substr(0, comma));
        if (!item.empty()) f(item);
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
}

bool header_lists(const http::MessageHead& head, std::string_view name, std::string_view token) {
    bool found = false;
    for (const auto& [k, v] : head.headers) {
        if (!http::iequals(k, name)) continue;
        each_element(v, [&](std::string_view item) {
            // "websocket" in Upgrade may carry a version ("websocket/13" is not one RFC 6455 defines).
            if (http::iequals(item, token)) found = true;
        });
    }
    return found;
}

}  // namespace

bool is_upgrade_request(const http::MessageHead& request) {
    return request.method == "GET" && header_lists(request, "Upgrade", "websocket") &&
           header_lists(request, "Connection", "upgrade");
}

bool is_upgrade_accepted(const http::MessageHead& response) {
    return response.status == 101 && header_lists(response, "Upgrade", "websocket");
}

Extensions negotiated_extensions(const http::MessageHead& response) {
    Extensions out;
    for (const auto& [k, v] : response.headers) {
        if (!http::iequals(k, "Sec-WebSocket-Extensions")) continue;
        each_element(v, [&](std::string_view item) {
            const std::string_view ext = http::trim_ows(item.substr(0, item.find(';')));
            // Its parameters (window bits, no_context_takeover) need nothing of a decoder
            // that keeps a full 32 KiB window and its context across messages.
            if (http::iequals(ext, "permessage-deflate") && !out.permessage_deflate)
                out.permessage_deflate = true;
            else if (out.unsupported.empty())
                out.unsupported = std::string(ext);
        });
    }
    return out;
}

}  // namespace proxy::websocket
