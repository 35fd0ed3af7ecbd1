#include "protocol/time.hpp"

#include "ossl/encoding.hpp"

namespace protocol {

namespace {

using namespace std::chrono;

// "YYYY-MM-DDTHH:MM:SSZ"
constexpr std::size_t kRfc3339Length = 20;

std::optional<int> digits(std::string_view text, std::size_t pos, std::size_t count) {
    int value = 0;
    for (std::size_t i = pos; i < pos + count; ++i) {
        if (text[i] < '0' || text[i] > '9') return std::nullopt;
        value = value * 10 + (text[i] - '0');
    }
    return value;
}

}  // namespace

std::string rfc3339(system_clock::time_point t) {
    const auto secs = floor<seconds>(t);
    const auto day = floor<days>(secs);
    const year_month_day ymd{day};
    const hh_mm_ss hms{secs - day};
    // system_clock (64-bit nanoseconds) spans the years 1678-2262: always four digits.
    const int year = static_cast<int>(ymd.year());
    // YYYY-MM-DDTHH:MM:SSZ, formatted by hand: snprintf is a visible share of issuance.
    std::string out(kRfc3339Length, '-');
    auto put = [&out](std::size_t at, int v, int width) { ossl::put_decimal(out.data() + at, v, width); };
    put(0, year, 4);
    put(5, static_cast<int>(static_cast<unsigned>(ymd.month())), 2);
    put(8, static_cast<int>(static_cast<unsigned>(ymd.day())), 2);
    out[10] = 'T';
    put(11, static_cast<int>(hms.hours().count()), 2);
    out[13] = ':';
    put(14, static_cast<int>(hms.minutes().count()), 2);
    out[16] = ':';
    put(17, static_cast<int>(hms.seconds().count()), 2);
    out[19] = 'Z';
    return out;
}

std::optional<system_clock::time_point> parse_rfc3339(std::string_view text) {
    if (text.size() != kRfc3339Length || text[4] != '-' || text[7] != '-' || text[10] != 'T' ||
        text[13] != ':' || text[16] != ':' || text[19] != 'Z')
        return std::nullopt;
    auto y = digits(text, 0, 4), mo = digits(text, 5, 2), d = digits(text, 8, 2);
    auto h = digits(text, 11, 2), mi = digits(text, 14, 2), s = digits(text, 17, 2);
    if (!y || !mo || !d || !h || !mi || !s) return std::nullopt;
    const year_month_day ymd{year{*y}, month{static_cast<unsigned>(*mo)}, day{static_cast<unsigned>(*d)}};
    // No leap seconds: certificates' validity times never carry them either.
    if (!ymd.ok() || *h > 23 || *mi > 59 || *s > 59) return std::nullopt;
    const sys_seconds when = sys_days{ymd} + hours{*h} + minutes{*mi} + seconds{*s};
    // system_clock counts nanoseconds in 64 bits (years 1677-2262 here); converting a time
    // outside that range would overflow.
    if (when < ceil<seconds>(system_clock::time_point::min()) ||
        when > floor<seconds>(system_clock::time_point::max()))
        return std::nullopt;
    return time_point_cast<system_clock::duration>(when);
}

}  // namespace protocol
