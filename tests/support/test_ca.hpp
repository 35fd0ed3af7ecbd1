#pragma once
// A SoftHSM-backed CA made by the real hsm-setup script in a temporary directory.

#include "pkcs11/signer.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace testing_support {

inline const std::filesystem::path kSourceDir = SPLITCA_SOURCE_DIR;
inline const std::filesystem::path kBinDir = SPLITCA_BIN_DIR;
inline const std::filesystem::path kSoftHsmModule = SPLITCA_SOFTHSM_MODULE;

struct TestCa {
    std::filesystem::path dir;

    // Runs `hsm-setup init --out <tmp> <extra_args>`; throws with the script's output on failure.
    static TestCa create(const std::vector<std::string>& extra_args = {});
    // One CA shared by all tests in this process; the only one in-process PKCS#11 can reach.
    static const TestCa& shared();

    std::filesystem::path softhsm_conf() const { return dir / "softhsm2.conf"; }
    std::filesystem::path root_pin() const { return dir / "secrets/root-token.pin"; }
    std::filesystem::path issuing_pin() const { return dir / "ca-service/issuing-token.pin"; }
    std::string issuing_key_label() const;  // from ca-service.toml

    pkcs11::HsmConfig issuing_token() const;
    pkcs11::HsmConfig root_token() const;
    pkcs11::SignerConfig issuing_signer() const;
};

// A certificate and key pair hsm-setup wrote (PEM file paths), for mTLS clients in tests.
struct Identity {
    std::string cert, key;
};
// nodes/node-<k>/ (hsm-setup init makes node-1 and node-2 by default).
inline Identity node_identity(const TestCa& ca, int k = 1) {
    const auto d = ca.dir / ("nodes/node-" + std::to_string(k));
    return {(d / "node.pem").string(), (d / "node.key").string()};
}
inline Identity admin_identity(const TestCa& ca) {
    return {(ca.dir / "admin/admin.pem").string(), (ca.dir / "admin/admin.key").string()};
}

// argv for running the hsm-setup script with `args`.
std::vector<std::string> hsm_setup_command(const std::vector<std::string>& args);

}  // namespace testing_support
