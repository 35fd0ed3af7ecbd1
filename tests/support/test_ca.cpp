#include "support/test_ca.hpp"

#include "support/process.hpp"

#include <cstdlib>
#include <stdexcept>

namespace testing_support {

std::vector<std::string> hsm_setup_command(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {(kSourceDir / "hsm-setup/hsm-setup").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
}

TestCa TestCa::create(const std::vector<std::string>& extra_args) {
    TestCa ca;
    ca.dir = make_temp_dir("splitca-test-ca");
    std::vector<std::string> args = {"init", "--out", ca.dir.string()};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    auto r = run(hsm_setup_command(args), {{"HSM_TOOL", (kBinDir / "hsm-tool").string()}});
    if (r.exit_code != 0) throw std::runtime_error("hsm-setup init failed:\n" + r.output);
    return ca;
}

const TestCa& TestCa::shared() {
    // SoftHSM reads SOFTHSM2_CONF once, when first initialised in this process: in-process
    // PKCS#11 in tests always talks to this shared CA's token store.
    static const TestCa ca = [] {
        TestCa made = create();
        ::setenv("SOFTHSM2_CONF", made.softhsm_conf().c_str(), 1);
        return made;
    }();
    return ca;
}

std::string TestCa::issuing_key_label() const {
    const std::string toml = read_file(dir / "ca-service/ca-service.toml");
    const std::string marker = "issuing_key = \"pkcs11:token=splitca-issuing;object=";
    const auto start = toml.find(marker);
    const auto end = start == std::string::npos ? start : toml.find('"', start + marker.size());
    if (end == std::string::npos) throw std::runtime_error("no issuing_key in ca-service.toml");
    return toml.substr(start + marker.size(), end - start - marker.size());
}

pkcs11::HsmConfig TestCa::issuing_token() const {
    pkcs11::HsmConfig c;
    c.module = kSoftHsmModule;
    c.token_label = "splitca-issuing";
    c.pin = pkcs11::PinSource::parse("file:" + issuing_pin().string());
    return c;
}

pkcs11::HsmConfig TestCa::root_token() const {
    pkcs11::HsmConfig c = issuing_token();
    c.token_label = "splitca-root";
    c.pin = pkcs11::PinSource::parse("file:" + root_pin().string());
    return c;
}

pkcs11::SignerConfig TestCa::issuing_signer() const {
    pkcs11::SignerConfig c;
    c.hsm = issuing_token();
    c.key = pkcs11::Uri::parse("pkcs11:token=splitca-issuing;object=" + issuing_key_label());
    return c;
}

}  // namespace testing_support
