// hsm-tool: the token operations behind hsm-setup. PINs are read from files (0600),
// never taken from the command line.

#include "pki/certificates.hpp"
#include "ossl/error.hpp"
#include "ossl/pem.hpp"
#include "pkcs11/module.hpp"
#include "pkcs11/signer.hpp"

#include <openssl/pem.h>
#include <openssl/rand.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

constexpr const char* kUsage = R"(usage: hsm-tool COMMAND [options]

Token operations for hsm-setup. Every PIN is read from a file that only its owner may
read (chmod 600); none is accepted on the command line.

commands:
  init-token  --module SO --label TOKEN --so-pin-file F --pin-file F
  keygen      --module SO --token TOKEN --pin-file F --label KEY [--algorithm ec-p256|ec-p384|rsa-3072]
  public-key  --module SO --token TOKEN --pin-file F --key KEY --out FILE.pem
  self-sign   --module SO --token TOKEN --pin-file F --key KEY --profile root|audit
              --cn NAME [--org ORG] --days N --out FILE.pem
  sign-ca     --module SO --token TOKEN --pin-file F --key KEY --issuer-cert FILE.pem
              --public-key FILE.pem --cn NAME [--org ORG] --days N --out FILE.pem
  sign-node   --module SO --token TOKEN --pin-file F --key KEY --issuer-cert FILE.pem
              --public-key FILE.pem --cn NODE [--org ORG] --hours N --out FILE.pem
              (a node's mTLS identity: clientAuth only; FILE.pem gets it, then the issuer)
  key-info    --module SO --token TOKEN --pin-file F --key KEY
)";

constexpr unsigned char kOidP256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
constexpr unsigned char kOidP384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
constexpr CK_ULONG kRsaBits = 3072;
constexpr int kMaxDays = 36500;
constexpr int kMaxNodeHours = 24 * 90;  // a node identity is short-lived by design

class Args {
public:
    Args(int argc, char** argv, int first) {
        for (int i = first; i < argc; ++i) {
            std::string k = argv[i];
            if (!k.starts_with("--")) throw std::invalid_argument("unexpected argument '" + k + "'");
            if (k == "--pin" || k == "--so-pin")
                throw std::invalid_argument(k + " is not accepted: PINs on a command line leak into process "
                                                "listings; use " + k + "-file");
            if (i + 1 >= argc) throw std::invalid_argument(k + " needs a value");
            values_[k.substr(2)] = argv[++i];
        }
    }
    std::string get(const std::string& k) const {
        auto it = values_.find(k);
        if (it == values_.end()) throw std::invalid_argument("missing --" + k);
        used_.push_back(k);
        return it->second;
    }
    std::string get_or(const std::string& k, const std::string& fallback) const {
        return values_.contains(k) ? get(k) : fallback;
    }
    void reject_unused() const {
        for (const auto& [k, v] : values_)
            if (std::find(used_.begin(), used_.end(), k) == used_.end())
                throw std::invalid_argument("unknown option --" + k);
    }

private:
    std::map<std::string, std::string> values_;
    mutable std::vector<std::string> used_;
};

// A whole number from 1 to `max` given as --option.
int parse_count(const std::string& s, const char* option, int max) {
    std::size_t pos = 0;
    int n = 0;
    try {
        n = std::stoi(s, &pos);
    } catch (...) {
        pos = 0;
    }
    if (pos != s.size() || n <= 0 || n > max)
        throw std::invalid_argument(std::string("--") + option + " must be a whole number from 1 to " +
                                    std::to_string(max));
    return n;
}
int parse_days(const std::string& s) { return parse_count(s, "days", kMaxDays); }

bool valid_node_name(const std::string& n) {
    if (n.empty() || n.size() > 63 || n.front() == '-') return false;
    return std::all_of(n.begin(), n.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

pkcs11::HsmConfig hsm_config(const Args& a) {
    pkcs11::HsmConfig c;
    c.module = a.get("module");
    c.token_label = a.get("token");
    c.pin = pkcs11::PinSource::parse("file:" + a.get("pin-file"));
    return c;
}

pkcs11::SignerConfig signer_config(const Args& a) {
    pkcs11::SignerConfig c;
    c.hsm = hsm_config(a);
    c.key = pkcs11::Uri::parse("pkcs11:token=" + c.hsm.token_label + ";object=" + a.get("key"));
    c.key.token = c.hsm.token_label;
    c.key.object = a.get("key");
    return c;
}

void write_file(const std::string& path, const std::string& content, mode_t mode) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
    bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
    ok = ::fsync(fd) == 0 && ok;
    ::close(fd);
    if (!ok) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
}

int init_token(const Args& a) {
    pkcs11::Module module(a.get("module"));
    const std::string label = a.get("label");
    std::string so_pin = pkcs11::read_pin(pkcs11::PinSource::parse("file:" + a.get("so-pin-file")));
    std::string pin = pkcs11::read_pin(pkcs11::PinSource::parse("file:" + a.get("pin-file")));
    a.reject_unused();
    if (label.empty() || label.size() > 32) throw std::invalid_argument("--label must be 1 to 32 characters");
    for (const auto& t : module.tokens())
        if (t.initialized && t.label == label)
            throw std::runtime_error("a token labelled '" + label + "' already exists in " + a.get("module") +
                                     "; refusing to erase it");
    auto slot = module.uninitialized_slot();
    if (!slot) throw std::runtime_error("no uninitialised token slot in " + a.get("module"));
    module.init_token(*slot, label, so_pin, pin);
    ::explicit_bzero(so_pin.data(), so_pin.size());
    ::explicit_bzero(pin.data(), pin.size());
    std::cout << "initialised token '" << label << "'\n";
    return 0;
}

int keygen(const Args& a) {
    pkcs11::Module module(a.get("module"));
    const std::string token = a.get("token");
    const std::string label = a.get("label");
    const std::string algorithm = a.get_or("algorithm", "ec-p256");
    std::string pin = pkcs11::read_pin(pkcs11::PinSource::parse("file:" + a.get("pin-file")));
    a.reject_unused();

    pkcs11::Session session(module, module.slot_for_token(token), true);
    session.login(pin, token);
    ::explicit_bzero(pin.data(), pin.size());

    CK_OBJECT_CLASS priv_class = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE find_tmpl[] = {{CKA_CLASS, &priv_class, sizeof priv_class},
                                {CKA_LABEL, const_cast<char*>(label.data()), label.size()}};
    if (!session.find(find_tmpl, 1).empty())
        throw std::runtime_error("token '" + token + "' already holds a key labelled '" + label + "'");

    unsigned char id[16];
    if (RAND_bytes(id, sizeof id) != 1) throw ossl::Error("RAND_bytes");
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_MECHANISM mech{CKM_EC_KEY_PAIR_GEN, nullptr, 0};
    CK_ULONG bits = kRsaBits;
    unsigned char exponent[] = {0x01, 0x00, 0x01};
    std::vector<CK_ATTRIBUTE> pub = {
        {CKA_TOKEN, &yes, sizeof yes},       {CKA_PRIVATE, &no, sizeof no},
        {CKA_VERIFY, &yes, sizeof yes},      {CKA_ENCRYPT, &no, sizeof no},
        {CKA_WRAP, &no, sizeof no},          {CKA_LABEL, const_cast<char*>(label.data()), label.size()},
        {CKA_ID, id, sizeof id},
    };
    if (algorithm == "ec-p256") {
        pub.push_back({CKA_EC_PARAMS, const_cast<unsigned char*>(kOidP256), sizeof kOidP256});
    } else if (algorithm == "ec-p384") {
        pub.push_back({CKA_EC_PARAMS, const_cast<unsigned char*>(kOidP384), sizeof kOidP384});
    } else if (algorithm == "rsa-3072") {
        mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
        pub.push_back({CKA_MODULUS_BITS, &bits, sizeof bits});
        pub.push_back({CKA_PUBLIC_EXPONENT, exponent, sizeof exponent});
    } else {
        throw std::invalid_argument("--algorithm must be ec-p256, ec-p384 or rsa-3072");
    }
    // The CA key: generated on the token, usable only for signing, never revealed.
    CK_ATTRIBUTE priv[] = {
        {CKA_TOKEN, &yes, sizeof yes},       {CKA_PRIVATE, &yes, sizeof yes},
        {CKA_SENSITIVE, &yes, sizeof yes},   {CKA_EXTRACTABLE, &no, sizeof no},
        {CKA_SIGN, &yes, sizeof yes},        {CKA_DECRYPT, &no, sizeof no},
        {CKA_UNWRAP, &no, sizeof no},        {CKA_DERIVE, &no, sizeof no},
        {CKA_LABEL, const_cast<char*>(label.data()), label.size()},
        {CKA_ID, id, sizeof id},
    };
    CK_OBJECT_HANDLE pub_h = 0, priv_h = 0;
    pkcs11::check(session.api()->C_GenerateKeyPair(session.handle(), &mech, pub.data(), pub.size(), priv,
                                                   sizeof priv / sizeof priv[0], &pub_h, &priv_h),
                  "generating " + algorithm + " key '" + label + "' on token '" + token + "'");
    if (!session.get_bool(priv_h, CKA_SENSITIVE) || session.get_bool(priv_h, CKA_EXTRACTABLE))
        throw std::runtime_error("token did not honour CKA_SENSITIVE/CKA_EXTRACTABLE for key '" + label + "'");
    std::cout << "generated " << algorithm << " key '" << label << "' on token '" << token
              << "' (sensitive, non-extractable)\n";
    return 0;
}

int public_key(const Args& a) {
    pkcs11::HsmSigner signer(signer_config(a));
    const std::string out = a.get("out");
    a.reject_unused();
    auto spki = signer.public_key_info();
    write_file(out, ossl::der_to_pem(spki, "PUBLIC KEY"), 0644);
    return 0;
}

ossl::PKey read_public_key(const std::string& path) {
    ossl::Bio bio(BIO_new_file(path.c_str(), "r"));
    ossl::PKey key(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr);
    if (!key) throw ossl::Error("reading public key file " + path);
    return key;
}

int self_sign(const Args& a) {
    pkcs11::HsmSigner signer(signer_config(a));
    const std::string profile = a.get("profile");
    pki::CertificateRequest req;
    if (profile == "root") req.profile = pki::Profile::Root;
    else if (profile == "audit") req.profile = pki::Profile::Audit;
    else throw std::invalid_argument("--profile must be root or audit");
    req.common_name = a.get("cn");
    req.organization = a.get_or("org", "");
    req.lifetime = std::chrono::days(parse_days(a.get("days")));
    req.subject_key = pki::public_key_from_der(signer.public_key_info());
    const std::string out = a.get("out");
    a.reject_unused();
    auto cert = pki::make_certificate(req, signer);
    write_file(out, ossl::to_pem(*cert), 0644);
    std::cout << "wrote " << out << " (sha256 fingerprint " << ossl::fingerprint_sha256(*cert) << ")\n";
    return 0;
}

// --issuer-cert must be the certificate of the HSM key that signs (`key`).
void require_issuer_key(const X509& issuer, const pkcs11::HsmSigner& signer, const std::string& key) {
    ossl::PKey issuer_pub(X509_get_pubkey(const_cast<X509*>(&issuer)));
    if (EVP_PKEY_eq(issuer_pub.get(), pki::public_key_from_der(signer.public_key_info()).get()) != 1)
        throw std::runtime_error("--issuer-cert does not belong to key '" + key + "'");
}

int sign_ca(const Args& a) {
    pkcs11::HsmSigner signer(signer_config(a));
    auto issuer = ossl::load_certificate(a.get("issuer-cert"));
    pki::CertificateRequest req;
    req.profile = pki::Profile::Issuing;
    req.common_name = a.get("cn");
    req.organization = a.get_or("org", "");
    req.lifetime = std::chrono::days(parse_days(a.get("days")));
    req.subject_key = read_public_key(a.get("public-key"));
    req.issuer = issuer.get();
    const std::string out = a.get("out");
    a.reject_unused();
    require_issuer_key(*issuer, signer, a.get("key"));
    auto cert = pki::make_certificate(req, signer);
    write_file(out, ossl::to_pem(*cert), 0644);
    std::cout << "wrote " << out << " (sha256 fingerprint " << ossl::fingerprint_sha256(*cert) << ")\n";
    return 0;
}

int sign_node(const Args& a) {
    pkcs11::HsmSigner signer(signer_config(a));
    auto issuer = ossl::load_certificate(a.get("issuer-cert"));
    pki::CertificateRequest req;
    req.profile = pki::Profile::NodeIdentity;
    req.common_name = a.get("cn");
    req.organization = a.get_or("org", "");
    req.lifetime = std::chrono::hours(parse_count(a.get("hours"), "hours", kMaxNodeHours));
    req.backdate = std::chrono::minutes(5);
    req.subject_key = read_public_key(a.get("public-key"));
    req.issuer = issuer.get();
    const std::string out = a.get("out");
    a.reject_unused();
    if (!valid_node_name(req.common_name))
        throw std::invalid_argument("--cn '" + req.common_name + "' must be lower-case letters, digits and '-'");
    require_issuer_key(*issuer, signer, a.get("key"));
    auto cert = pki::make_certificate(req, signer);
    // The node sends the chain: its identity, then the node-identity CA under the service CA.
    write_file(out, ossl::to_pem(*cert) + ossl::to_pem(*issuer), 0644);
    std::cout << "wrote " << out << " (sha256 fingerprint " << ossl::fingerprint_sha256(*cert) << ")\n";
    return 0;
}

int key_info(const Args& a) {
    pkcs11::Module module(a.get("module"));
    const std::string token = a.get("token");
    const std::string key = a.get("key");
    std::string pin = pkcs11::read_pin(pkcs11::PinSource::parse("file:" + a.get("pin-file")));
    a.reject_unused();
    pkcs11::Session session(module, module.slot_for_token(token));
    session.login(pin, token);
    ::explicit_bzero(pin.data(), pin.size());
    CK_OBJECT_HANDLE h = session.find_one(CKO_PRIVATE_KEY, key);
    pkcs11::Bytes value;
    CK_RV rv = session.get_attribute(h, CKA_VALUE, value);
    std::cout << "sensitive=" << session.get_bool(h, CKA_SENSITIVE)
              << " extractable=" << session.get_bool(h, CKA_EXTRACTABLE)
              << " always_sensitive=" << session.get_bool(h, CKA_ALWAYS_SENSITIVE)
              << " never_extractable=" << session.get_bool(h, CKA_NEVER_EXTRACTABLE)
              << " value_read=" << pkcs11::rv_name(rv) << "\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
        std::cout << kUsage;
        return argc < 2 ? 2 : 0;
    }
    const std::string command = argv[1];
    try {
        Args args(argc, argv, 2);
        if (command == "init-token") return init_token(args);
        if (command == "keygen") return keygen(args);
        if (command == "public-key") return public_key(args);
        if (command == "self-sign") return self_sign(args);
        if (command == "sign-ca") return sign_ca(args);
        if (command == "sign-node") return sign_node(args);
        if (command == "key-info") return key_info(args);
        std::cerr << "hsm-tool: unknown command '" << command << "'\n" << kUsage;
        return 2;
    } catch (const std::invalid_argument& e) {
        std::cerr << "hsm-tool " << command << ": " << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "hsm-tool " << command << ": " << e.what() << "\n";
        return 1;
    }
}
