// pkcs11-bench: raw HSM ECDSA signature rate (C_Sign on a prepared digest, one session per
// thread) against the rate through pkcs11::HsmSigner (provider in a private OpenSSL
// context, hashing included), interleaved in rounds so machine noise hits both alike.

#include "ossl/digest.hpp"
#include "support/bench_ca.hpp"

#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace {

constexpr std::size_t kTbsBytes = 600;  // about the size of a leaf tbsCertificate

struct Options {
    std::filesystem::path ca_dir;
    int threads = 2;
    int rounds = 3;
    std::chrono::milliseconds round_time{1500};
};

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
            return argv[++i];
        };
        if (a == "--ca-dir") o.ca_dir = value();
        else if (a == "--threads") o.threads = std::stoi(value());
        else if (a == "--rounds") o.rounds = std::stoi(value());
        else if (a == "--round-ms") o.round_time = std::chrono::milliseconds(std::stoi(value()));
        else if (a == "--help" || a == "-h") {
            std::cout << "usage: pkcs11-bench [--ca-dir DIR] [--threads N] [--rounds N] [--round-ms MS]\n"
                         "Without --ca-dir a temporary SoftHSM CA is made with hsm-setup.\n";
            std::exit(0);
        } else throw std::invalid_argument("unknown option " + a);
    }
    if (o.threads < 1 || o.threads > 64 || o.rounds < 1) throw std::invalid_argument("bad --threads/--rounds");
    return o;
}

}  // namespace

int main(int argc, char** argv) try {
    const Options opt = parse(argc, argv);
    auto ca = bench::BenchCa::open_or_create(opt.ca_dir);
    auto config = ca.issuing_signer();
    config.max_concurrent_operations = static_cast<unsigned>(opt.threads);
    pkcs11::HsmSigner signer(config);

    // Raw: same module instance, one logged-in session per thread, CKM_ECDSA on a digest.
    pkcs11::Module module(ca.module);
    const CK_SLOT_ID slot = module.slot_for_token(config.hsm.token_label);
    std::vector<std::unique_ptr<pkcs11::Session>> sessions;
    std::vector<CK_OBJECT_HANDLE> keys;
    const std::string pin = pkcs11::read_pin(config.hsm.pin);
    for (int t = 0; t < opt.threads; ++t) {
        sessions.push_back(std::make_unique<pkcs11::Session>(module, slot));
        sessions.back()->login(pin, config.hsm.token_label);
        keys.push_back(sessions.back()->find_one(CKO_PRIVATE_KEY, ca.issuing_key_label));
    }
    std::vector<std::uint8_t> tbs(kTbsBytes, 0x5a);
    const auto digest = ossl::sha256(tbs);

    std::vector<double> raw, via_signer;
    for (int r = 0; r < opt.rounds; ++r) {
        raw.push_back(bench::measure_rate(opt.threads, opt.round_time, [&](int t) {
            sessions[static_cast<std::size_t>(t)]->sign(keys[static_cast<std::size_t>(t)], CKM_ECDSA, digest);
        }));
        via_signer.push_back(bench::measure_rate(opt.threads, opt.round_time, [&](int) { signer.sign(tbs); }));
        std::printf("round %d: raw %.0f sig/s, signer %.0f sig/s\n", r + 1, raw.back(), via_signer.back());
    }
    const double raw_rate = bench::median(raw), signer_rate = bench::median(via_signer);
    std::printf("raw HSM ECDSA P-256 (C_Sign, %d threads): %.0f signatures/s (median of %d)\n", opt.threads, raw_rate,
                opt.rounds);
    std::printf("pkcs11::HsmSigner (%d threads):           %.0f signatures/s (median of %d)\n", opt.threads,
                signer_rate, opt.rounds);
    std::printf("ratio signer=%.2f\n", signer_rate / raw_rate);
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "pkcs11-bench: %s\n", e.what());
    return 1;
}
