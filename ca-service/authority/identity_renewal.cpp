#include "authority/identity_renewal.hpp"

#include "ossl/digest.hpp"
#include "ossl/error.hpp"
#include "ossl/pem.hpp"
#include "pki/certificates.hpp"
#include "policy/public_key.hpp"
#include "protocol/time.hpp"

#include <openssl/x509.h>

#include <algorithm>
#include <stdexcept>

namespace ca {

namespace {

constexpr std::chrono::minutes kBackdate{5};

std::string serial_hex(const X509& cert) {
    ossl::BigNum bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(&cert), nullptr));
    char* hex = bn ? BN_bn2hex(bn.get()) : nullptr;
    if (hex == nullptr) throw ossl::Error("reading a serial number");
    std::string out(hex);
    OPENSSL_free(hex);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

}  // namespace

IdentityRenewer::IdentityRenewer(pkcs11::Signer& ca_signer, const X509& ca_certificate, RenewalSettings settings,
                                 audit::AuditLog& audit, NodeRegistry& nodes)
    : signer_(ca_signer),
      ca_certificate_(X509_dup(const_cast<X509*>(&ca_certificate))),
      ca_pem_(ossl::to_pem(ca_certificate)),
      organization_(ossl::subject_field(ca_certificate, NID_organizationName)),
      settings_(settings),
      audit_(audit),
      nodes_(nodes),
      rate_({settings.renewals_per_hour / 3600.0, settings.burst}) {
    if (!ca_certificate_) throw ossl::Error("copying the node-identity CA certificate");
    ossl::PKey cert_key(X509_get_pubkey(ca_certificate_.get()));
    ossl::PKey hsm_key = pki::public_key_from_der(signer_.public_key_info());
    if (!cert_key || EVP_PKEY_eq(cert_key.get(), hsm_key.get()) != 1)
        throw std::runtime_error("node_identity.ca_key is not the key of node_identity.ca_certificate (" +
                                 ossl::common_name(*ca_certificate_) + ")");
    if (X509_check_ca(ca_certificate_.get()) == 0)
        throw std::runtime_error("node_identity.ca_certificate (" + ossl::common_name(*ca_certificate_) +
                                 ") is not a CA certificate");
}

RenewalOutcome IdentityRenewer::refuse(const NodeIdentity& node, protocol::ErrorCode code, std::string message,
                                       std::chrono::seconds retry_after) {
    ++refused_;
    if (code != protocol::ErrorCode::audit_unavailable) {
        // The refusal stands whether or not the record is written; the log's state is on /healthz.
        try {
            audit_.append(audit::ServiceRecord{"identity_renewal_refused", "node " + node.name + " (sha256 " +
                                                                               node.fingerprint + "): " +
                                                                               std::string(protocol::to_string(code)) +
                                                                               ": " + message});
        } catch (const audit::AuditUnavailable&) {
        }
    }
    return RenewalRefusal{{code, std::move(message)}, retry_after};
}

RenewalOutcome IdentityRenewer::renew(const NodeIdentity& node, std::span<const std::uint8_t> current_der,
                                      std::span<const std::uint8_t> csr_der) {
    using E = protocol::ErrorCode;
    if (node.admin) return RenewalRefusal{{E::forbidden, "admin identities are not renewed by the ca-service"}, {}};
    if (auto why = audit_.failure())
        return refuse(node, E::audit_unavailable, "the audit log cannot be written; no identity is renewed: " + *why,
                      std::chrono::seconds(5));
    if (!settings_.enabled)
        return refuse(node, E::forbidden,
                      "identity renewal is switched off on this ca-service ([node_identity] renew = false); the "
                      "operator renews '" + node.name + "' with: hsm-setup renew-node " + node.name + " --out DIR");
    if (nodes_.is_revoked(node))
        return refuse(node, E::node_revoked,
                      "the certificate of '" + node.name + "' (sha256 " + node.fingerprint +
                          ") has been revoked by an operator; a revoked node cannot renew its identity");

    if (csr_der.empty() || csr_der.size() > protocol::kMaxCsrBytes)
        return refuse(node, E::invalid_field, "csr must be a DER PKCS#10 request of at most " +
                                                  std::to_string(protocol::kMaxCsrBytes) + " bytes");
    const unsigned char* p = csr_der.data();
    ossl::X509Req csr(d2i_X509_REQ(nullptr, &p, static_cast<long>(csr_der.size())));
    if (!csr || p != csr_der.data() + csr_der.size())
        return refuse(node, E::invalid_field, "csr is not one DER PKCS#10 certificate request");
    ossl::PKey csr_key(X509_REQ_get_pubkey(csr.get()));
    if (!csr_key) return refuse(node, E::invalid_public_key, "the CSR's public key does not decode");
    if (X509_REQ_verify(csr.get(), csr_key.get()) != 1)
        return refuse(node, E::invalid_field,
                      "the CSR's signature does not verify with the key it carries (no proof of possession)");
    const ossl::Bytes spki = ossl::public_key_der(*csr_key);
    auto checked = policy::check_public_key(spki);
    if (auto* e = std::get_if<protocol::Error>(&checked)) return refuse(node, e->code, e->message);

    const unsigned char* q = current_der.data();
    ossl::X509Ptr current(d2i_X509(nullptr, &q, static_cast<long>(current_der.size())));
    if (!current) return refuse(node, E::unauthenticated, "the current client certificate does not decode");
    ossl::PKey current_key(X509_get_pubkey(current.get()));
    if (current_key && EVP_PKEY_eq(current_key.get(), csr_key.get()) == 1)
        return refuse(node, E::invalid_public_key,
                      "a renewal needs a new key: the CSR carries the key of the current identity");

    if (auto rate = rate_.try_acquire(node.name); !rate.allowed)
        return refuse(node, E::rate_limited,
                      "node '" + node.name + "' renews its identity too often; retry after " +
                          std::to_string(rate.retry_after.count()) + " s",
                      rate.retry_after);

    // Never past the CA's own end.
    auto lifetime = settings_.lifetime;
    const auto ca_end = ossl::not_after(*ca_certificate_);
    const auto now = std::chrono::system_clock::now();
    if (now + lifetime > ca_end)
        lifetime = std::chrono::duration_cast<std::chrono::seconds>(ca_end - now);
    if (lifetime <= std::chrono::seconds(0))
        return refuse(node, E::internal_error, "the node-identity CA certificate has expired; the operator must replace it");

    pki::CertificateRequest request;
    request.profile = pki::Profile::NodeIdentity;
    request.common_name = node.name;
    request.organization = organization_;
    request.lifetime = lifetime;
    request.backdate = kBackdate;
    request.subject_key = std::move(csr_key);
    request.issuer = ca_certificate_.get();
    ossl::X509Ptr issued;
    try {
        issued = pki::make_certificate(request, signer_);
    } catch (const pkcs11::HsmUnavailable& e) {
        return refuse(node, E::hsm_unavailable, e.what(), std::chrono::seconds(5));
    }

    RenewedIdentity out;
    out.serial_hex = serial_hex(*issued);
    out.not_after = protocol::rfc3339(std::chrono::time_point_cast<std::chrono::seconds>(ossl::not_after(*issued)));
    out.certificate_pem = ossl::to_pem(*issued) + ca_pem_;
    // On the record before the node has it; a record that cannot be written discards it.
    try {
        out.audit_seq = audit_.append(audit::ServiceRecord{
            "identity_renewed", "node " + node.name + " (was sha256 " + node.fingerprint + ") now sha256 " +
                                    ossl::fingerprint_sha256(*issued) + ", serial " + out.serial_hex + ", key sha256 " +
                                    ossl::to_hex(ossl::sha256(spki)) + ", valid until " + out.not_after});
    } catch (const audit::AuditUnavailable& e) {
        ++refused_;
        return RenewalRefusal{{E::audit_unavailable,
                               std::string("the audit record could not be written, so the identity was discarded: ") +
                                   e.what()},
                              std::chrono::seconds(5)};
    }
    ++renewed_;
    return out;
}

std::string IdentityRenewer::metrics() const {
    return "# HELP splitca_identities_renewed_total Node identities renewed by their nodes.\n"
           "# TYPE splitca_identities_renewed_total counter\nsplitca_identities_renewed_total " +
           std::to_string(renewed_.load()) +
           "\n# HELP splitca_identity_renewals_refused_total Node identity renewals refused.\n"
           "# TYPE splitca_identity_renewals_refused_total counter\nsplitca_identity_renewals_refused_total " +
           std::to_string(refused_.load()) + "\n";
}

}  // namespace ca
