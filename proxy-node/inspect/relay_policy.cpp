#include "inspect/relay_policy.hpp"

#include "http/error_page.hpp"
#include "http/text.hpp"

#include <algorithm>

namespace proxy::inspect {

http::Page block_page_for(std::string_view host, const Verdict& v, bool upload) {
    if (v.page) return *v.page;
    return http::block_page(host, v.rule, upload, v.rule == kEngineUnavailableRule);
}

namespace {
constexpr std::size_t kMaxLoggedPath = 200;
}

Verdict fail_closed(Verdict v) {
    if (v.kind != Verdict::Kind::failed) return v;
    return Verdict::block(std::string(kEngineUnavailableRule), v.rule + ": " + v.note);
}

Verdict refuse_rewrite(const Verdict& v, std::string_view why) {
    return Verdict::block(v.rule.empty() ? std::string("rewrite") : v.rule,
                          (v.note.empty() ? std::string() : v.note + "; ") + "it cannot be sent in place of the client's: " +
                              std::string(why) + " (refused)");
}

bool is_stream_type(const InspectionSection& config, std::string_view content_type) {
    const std::string_view media = http::trim_ows(content_type.substr(0, content_type.find(';')));
    return std::any_of(config.stream_types.begin(), config.stream_types.end(),
                       [&](const std::string& t) { return http::iequals(media, t); });
}

std::string loggable_path(std::string_view target) {
    target = target.substr(0, target.find_first_of("?#"));
    if (target.size() > kMaxLoggedPath) return std::string(target.substr(0, kMaxLoggedPath)) + "...";
    return std::string(target);
}

}  // namespace proxy::inspect
