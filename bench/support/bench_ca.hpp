#pragma once
// Where benchmarks get their HSM: an existing hsm-setup directory, or a fresh temporary
// one made with the real script.

#include "pkcs11/module.hpp"
#include "pkcs11/signer.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>

namespace bench {

struct BenchCa {
    std::filesystem::path dir;
    bool temporary = false;
    std::filesystem::path module;
    std::string issuing_key_label;

    // DIR made by `hsm-setup init`; empty = create a temporary one (removed on destruction).
    static BenchCa open_or_create(const std::filesystem::path& dir);
    ~BenchCa();
    BenchCa() = default;
    BenchCa(BenchCa&&) = default;

    pkcs11::SignerConfig issuing_signer() const;
};

// Runs `op(thread_index)` on `threads` threads until `duration` passes; returns ops/s.
double measure_rate(int threads, std::chrono::milliseconds duration, const std::function<void(int)>& op);

double median(std::vector<double> v);

}  // namespace bench
