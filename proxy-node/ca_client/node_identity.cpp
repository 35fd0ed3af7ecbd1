#include "ca_client/node_identity.hpp"

#include "ossl/error.hpp"
#include "ossl/pem.hpp"

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace proxy {

namespace {

std::filesystem::path pending(const std::filesystem::path& p) { return p.string() + ".new"; }

// Written, synced and closed, mode 0600; throws naming the file.
void write_synced(const std::filesystem::path& path, const std::string& content) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) throw std::runtime_error("cannot write " + path.string() + ": " + std::strerror(errno));
    bool ok = ::fchmod(fd, 0600) == 0;
    std::size_t done = 0;
    while (ok && done < content.size()) {
        const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
        if (n < 0 && errno == EINTR) continue;
        ok = n > 0;
        if (ok) done += static_cast<std::size_t>(n);
    }
    ok = ok && ::fsync(fd) == 0;
    const int saved = errno;
    ::close(fd);
    if (!ok) {
        ::unlink(path.c_str());
        throw std::runtime_error("cannot write " + path.string() + ": " + std::strerror(saved));
    }
}

void sync_directory(const std::filesystem::path& file) {
    const auto dir = file.has_parent_path() ? file.parent_path() : std::filesystem::path(".");
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
}

void rename_or_throw(const std::filesystem::path& from, const std::filesystem::path& to) {
    if (::rename(from.c_str(), to.c_str()) != 0)
        throw std::runtime_error("cannot replace " + to.string() + ": " + std::strerror(errno));
}

}  // namespace

IdentityInfo read_identity(const IdentityFiles& files) {
    auto cert = ossl::load_certificate(files.certificate);
    IdentityInfo info;
    info.name = ossl::common_name(*cert);
    info.not_before = ossl::not_before(*cert);
    info.not_after = ossl::not_after(*cert);
    return info;
}

std::string recover_interrupted_renewal(const IdentityFiles& files) {
    std::error_code ec;
    const bool key_pending = std::filesystem::exists(pending(files.private_key), ec);
    const bool cert_pending = std::filesystem::exists(pending(files.certificate), ec);
    if (cert_pending && !key_pending) {
        // The new key is in place already; its certificate is the pending one.
        rename_or_throw(pending(files.certificate), files.certificate);
        sync_directory(files.certificate);
        return "finished an interrupted identity renewal: " + files.certificate.string() + " installed";
    }
    if (key_pending) {
        std::filesystem::remove(pending(files.private_key), ec);
        std::filesystem::remove(pending(files.certificate), ec);
        return "discarded an identity renewal that never took effect (" + pending(files.private_key).string() + ")";
    }
    return {};
}

RenewalRequest make_renewal_request(const std::string& name) {
    RenewalRequest out;
    out.key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    if (!out.key) throw ossl::Error("generating a P-256 identity key");
    ossl::X509Req req(X509_REQ_new());
    ossl::X509Name subject(X509_NAME_new());
    if (!req || !subject ||
        X509_NAME_add_entry_by_txt(subject.get(), "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0) != 1 ||
        X509_REQ_set_subject_name(req.get(), subject.get()) != 1 || X509_REQ_set_pubkey(req.get(), out.key.get()) != 1 ||
        X509_REQ_sign(req.get(), out.key.get(), EVP_sha256()) <= 0)
        throw ossl::Error("building the identity renewal request");
    unsigned char* der = nullptr;
    const int len = i2d_X509_REQ(req.get(), &der);
    if (len <= 0) throw ossl::Error("encoding the identity renewal request");
    out.csr.assign(der, der + len);
    OPENSSL_free(der);
    return out;
}

std::optional<std::string> check_renewed_identity(const std::string& chain_pem, const EVP_PKEY& new_key,
                                                  const std::string& name, const std::filesystem::path& service_ca) {
    ossl::Bio bio(BIO_new_mem_buf(chain_pem.data(), static_cast<int>(chain_pem.size())));
    ossl::X509Stack chain(sk_X509_new_null());
    if (!bio || !chain) throw ossl::Error("allocating");
    while (X509* c = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) sk_X509_push(chain.get(), c);
    if (sk_X509_num(chain.get()) == 0) return "the answer holds no PEM certificate";
    X509* leaf = sk_X509_value(chain.get(), 0);
    ossl::PKey leaf_key(X509_get_pubkey(leaf));
    if (!leaf_key || EVP_PKEY_eq(leaf_key.get(), &new_key) != 1) return "the certificate is not for the key this node made";
    if (ossl::common_name(*leaf) != name)
        return "the certificate names '" + ossl::common_name(*leaf) + "', this node is '" + name + "'";
    ossl::X509StorePtr store(X509_STORE_new());
    if (!store || X509_STORE_load_file(store.get(), service_ca.c_str()) != 1)
        return "cannot load the service CA " + service_ca.string();
    ossl::X509StoreCtx ctx(X509_STORE_CTX_new());
    if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), leaf, chain.get()) != 1) throw ossl::Error("verifying");
    X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
    if (X509_verify_cert(ctx.get()) != 1)
        return std::string("the certificate does not verify against the service CA: ") +
               X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
    return std::nullopt;
}

void install_identity(const IdentityFiles& files, const EVP_PKEY& key, const std::string& chain_pem) {
    ossl::Bio bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PrivateKey(bio.get(), const_cast<EVP_PKEY*>(&key), nullptr, nullptr, 0, nullptr, nullptr) != 1)
        throw ossl::Error("encoding the new identity key");
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    std::string key_pem(data, static_cast<std::size_t>(len));
    try {
        write_synced(pending(files.private_key), key_pem);
        write_synced(pending(files.certificate), chain_pem);
    } catch (...) {
        ::explicit_bzero(key_pem.data(), key_pem.size());
        std::error_code ec;
        std::filesystem::remove(pending(files.private_key), ec);
        std::filesystem::remove(pending(files.certificate), ec);
        throw;
    }
    ::explicit_bzero(key_pem.data(), key_pem.size());
    rename_or_throw(pending(files.private_key), files.private_key);
    rename_or_throw(pending(files.certificate), files.certificate);
    sync_directory(files.private_key);
    if (files.certificate.parent_path() != files.private_key.parent_path()) sync_directory(files.certificate);
}

}  // namespace proxy
