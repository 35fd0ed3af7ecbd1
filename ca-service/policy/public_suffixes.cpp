#include "policy/public_suffixes.hpp"

#include <algorithm>
#include <array>

namespace ca::policy {

namespace {

// A built-in subset of the Public Suffix List (publicsuffix.org, Debian's
// /usr/share/publicsuffix/public_suffix_list.dat): every two-letter country code, the
// generic TLDs in common use, and the common second-level and hosting-provider suffixes
// under which unrelated parties own names. Kept sorted: looked up by binary search.
// Every entry is a rule of the real list; tests check the examples the policy relies on.
constexpr std::array kPublicSuffixes = std::to_array<std::string_view>({
    // clang-format off
    "ab.ca", "ac", "ac.at", "ac.be", "ac.cn", "ac.id", "ac.il", "ac.in", "ac.jp", "ac.ke", "ac.kr",
    "ac.nz", "ac.th", "ac.uk", "ac.za", "academy", "accountant", "ad", "ad.jp", "ae", "aero", "af", "ag",
    "agency", "ai", "al", "am", "amazon", "android", "ao", "app", "apple", "appspot.com", "aq", "ar",
    "art", "as", "asia", "asn.au", "asso.fr", "at", "au", "aw", "aws", "ax", "az", "azure",
    "azure-mobile.net", "azurestaticapps.net", "azurewebsites.net", "ba", "bank", "bar", "bb", "bc.ca",
    "be", "bel.tr", "berlin", "bf", "bg", "bh", "bi", "bid", "bitbucket.io", "biz", "bj", "black",
    "blog", "blogspot.com", "blue", "bm", "bn", "bo", "br", "bs", "bt", "bv", "bw", "by", "bz", "ca",
    "ca.us", "care", "cat", "cc", "cd", "center", "cf", "cg", "ch", "chat", "chrome", "ci", "city", "cl",
    "click", "cloud", "cloudapp.net", "cloudfront.net", "club", "cm", "cn", "co", "co.at", "co.cr",
    "co.hu", "co.id", "co.il", "co.in", "co.it", "co.jp", "co.ke", "co.kr", "co.no", "co.nz", "co.th",
    "co.tz", "co.ug", "co.uk", "co.ve", "co.za", "co.zw", "codeberg.page", "codes", "com", "com.ar",
    "com.au", "com.bo", "com.br", "com.cn", "com.co", "com.cy", "com.de", "com.do", "com.ec", "com.eg",
    "com.es", "com.fr", "com.gh", "com.gr", "com.gt", "com.hk", "com.mt", "com.mx", "com.my", "com.ng",
    "com.pe", "com.ph", "com.pk", "com.pl", "com.pr", "com.pt", "com.py", "com.ro", "com.ru", "com.sa",
    "com.sg", "com.tr", "com.tw", "com.ua", "com.uy", "com.ve", "com.vn", "company", "coop", "cr",
    "cricket", "cu", "cv", "cw", "cx", "cy", "cz", "date", "ddns.net", "de", "design", "dev", "digital",
    "dj", "dk", "dm", "do", "download", "duckdns.org", "dyndns.org", "dynv6.net", "dz", "ec", "ed.jp",
    "edu", "edu.au", "edu.br", "edu.cn", "edu.eg", "edu.es", "edu.gr", "edu.hk", "edu.in", "edu.it",
    "edu.mx", "edu.my", "edu.ph", "edu.pk", "edu.pl", "edu.sa", "edu.sg", "edu.tr", "edu.tw", "edu.ua",
    "edu.vn", "education", "ee", "eg", "elasticbeanstalk.com", "email", "energy", "es", "et", "eu",
    "faith", "fi", "finance", "firebaseapp.com", "firm.in", "fit", "fj", "fly.dev", "fm", "fo", "fr",
    "fun", "fyi", "ga", "game", "games", "gb", "gc.ca", "gd", "gdn", "ge", "geek.nz", "gen.in", "gf",
    "gg", "gh", "gi", "github.io", "githubusercontent.com", "gitlab.io", "gl", "glitch.me", "global",
    "global.ssl.fastly.net", "gm", "gmail", "gn", "go.id", "go.jp", "go.kr", "go.th", "gob.ar", "gob.es",
    "gob.mx", "gob.pe", "gold", "google", "gouv.fr", "gov", "gov.au", "gov.br", "gov.cn", "gov.co",
    "gov.eg", "gov.gr", "gov.hk", "gov.ie", "gov.il", "gov.in", "gov.it", "gov.my", "gov.ng", "gov.ph",
    "gov.pk", "gov.pl", "gov.pt", "gov.sa", "gov.sg", "gov.tr", "gov.tw", "gov.ua", "gov.uk", "gov.vn",
    "gov.za", "govt.nz", "gp", "gq", "gr", "gr.jp", "green", "group", "gs", "gt", "gu", "guru", "gv.at",
    "gw", "gy", "health", "herokuapp.com", "herokussl.com", "hk", "hm", "hn", "hopto.org", "host",
    "hosting", "hr", "ht", "hu", "icu", "id", "id.au", "idv.tw", "ie", "il", "im", "in", "in.th",
    "in.ua", "inc", "ind.in", "info", "insurance", "int", "io", "iq", "ir", "is", "it", "je", "jo",
    "jobs", "jp", "ke", "kg", "ki", "kiev.ua", "kim", "km", "kn", "kp", "kr", "kw", "ky", "kz", "la",
    "law", "lb", "lc", "legal", "lg.jp", "li", "life", "link", "live", "lk", "llc", "loan", "lol",
    "london", "lr", "ls", "lt", "ltd", "ltd.uk", "lu", "lv", "ly", "ma", "mc", "md", "me", "me.uk",
    "media", "men", "mg", "mh", "microsoft", "mil", "mk", "ml", "mn", "mo", "mobi", "moe", "money", "mp",
    "mq", "mr", "ms", "msk.ru", "mt", "mu", "museum", "mv", "mw", "mx", "my", "myftp.org",
    "myshopify.com", "mz", "na", "name", "nc", "ne", "ne.jp", "ne.kr", "net", "net.ar", "net.au",
    "net.br", "net.cn", "net.co", "net.hk", "net.il", "net.in", "net.mx", "net.my", "net.nz", "net.ph",
    "net.pk", "net.pl", "net.ru", "net.sa", "net.sg", "net.tr", "net.tw", "net.ua", "net.uk", "net.vn",
    "net.za", "netlify.app", "network", "new", "news", "nf", "ng", "ngrok.io", "nhs.uk", "ni", "ninja",
    "nl", "no", "no-ip.org", "nom.es", "now.sh", "nr", "nu", "ny.us", "nyc", "nz", "om", "on.ca", "one",
    "online", "onrender.com", "or.at", "or.id", "or.jp", "or.ke", "or.kr", "or.th", "org", "org.ar",
    "org.au", "org.br", "org.cn", "org.co", "org.es", "org.hk", "org.il", "org.in", "org.mx", "org.my",
    "org.nz", "org.ph", "org.pk", "org.pl", "org.ro", "org.ru", "org.sa", "org.sg", "org.tr", "org.tw",
    "org.ua", "org.uk", "org.vn", "org.za", "pa", "page", "pages.dev", "paris", "party", "pe", "pf",
    "ph", "pink", "pk", "pl", "play", "plc.uk", "plus", "pm", "pn", "police.uk", "pr", "priv.no", "pro",
    "ps", "pt", "pub", "pw", "py", "pythonanywhere.com", "qa", "qc.ca", "r2.dev", "racing", "re",
    "re.kr", "readthedocs.io", "red", "repl.co", "res.in", "rest", "review", "ro", "rocks", "rs", "ru",
    "run", "rw", "s3.amazonaws.com", "sa", "sb", "sc", "school", "school.nz", "science", "sd", "se",
    "services", "sg", "sh", "shop", "si", "site", "sj", "sk", "sl", "sm", "sn", "so", "social",
    "software", "solutions", "space", "spb.ru", "sr", "ss", "st", "store", "stream", "studio", "su",
    "support", "sv", "sx", "sy", "systems", "sytes.net", "sz", "tc", "td", "team", "tech", "tel", "tf",
    "tg", "th", "tips", "tj", "tk", "tl", "tm", "tn", "to", "today", "tokyo", "tools", "top", "tr",
    "trade", "travel", "tt", "tv", "tw", "tx.us", "tz", "ua", "ug", "uk", "university", "us", "uy", "uz",
    "va", "vc", "ve", "vercel.app", "vg", "vi", "vip", "vn", "vu", "web.app", "web.id", "web.za",
    "webcam", "website", "wf", "wiki", "win", "wixsite.com", "work", "workers.dev", "world", "ws", "wtf",
    "xxx", "xyz", "ye", "youtube", "yt", "zapto.org", "zm", "zone", "zw"
    // clang-format on
});
static_assert(std::ranges::is_sorted(kPublicSuffixes), "keep kPublicSuffixes sorted for binary search");
static_assert(std::ranges::adjacent_find(kPublicSuffixes) == kPublicSuffixes.end(), "duplicate suffix");

}  // namespace

bool is_public_suffix(std::string_view name) {
    return std::binary_search(kPublicSuffixes.begin(), kPublicSuffixes.end(), name);
}

std::optional<std::string_view> registrable_domain(std::string_view name) {
    // Scan suffixes from the longest: the first listed one decides, as in the PSL.
    std::size_t previous_label = std::string_view::npos;  // start of the label before `rest`
    std::size_t start = 0;
    while (true) {
        std::string_view rest = name.substr(start);
        auto dot = rest.find('.');
        if (is_public_suffix(rest) || dot == std::string_view::npos) {
            // An unlisted top-level label is a public suffix too (the PSL's default rule).
            if (previous_label == std::string_view::npos) return std::nullopt;
            return name.substr(previous_label);
        }
        previous_label = start;
        start += dot + 1;
    }
}

std::size_t builtin_public_suffix_count() {
    return kPublicSuffixes.size();
}

}  // namespace ca::policy
