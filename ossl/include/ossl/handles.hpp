#pragma once
// RAII owners for every OpenSSL handle the project touches. Logic code never calls *_free.

#include <openssl/bio.h>
#include <openssl/conf.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/store.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

namespace ossl {

template <auto FreeFn>
struct Deleter {
    template <typename T>
    void operator()(T* p) const noexcept {
        FreeFn(p);
    }
};

template <typename T, auto FreeFn>
using Owned = std::unique_ptr<T, Deleter<FreeFn>>;

using LibCtx = Owned<OSSL_LIB_CTX, OSSL_LIB_CTX_free>;
using Conf = Owned<CONF, NCONF_free>;
using Bio = Owned<BIO, BIO_free_all>;
using PKey = Owned<EVP_PKEY, EVP_PKEY_free>;
using PKeyCtx = Owned<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using MdCtx = Owned<EVP_MD_CTX, EVP_MD_CTX_free>;
using Md = Owned<EVP_MD, EVP_MD_free>;
using Store = Owned<OSSL_STORE_CTX, OSSL_STORE_close>;
using StoreInfo = Owned<OSSL_STORE_INFO, OSSL_STORE_INFO_free>;
using X509Ptr = Owned<X509, X509_free>;
using X509Req = Owned<X509_REQ, X509_REQ_free>;
using X509Name = Owned<X509_NAME, X509_NAME_free>;
using X509Ext = Owned<X509_EXTENSION, X509_EXTENSION_free>;
using X509StorePtr = Owned<X509_STORE, X509_STORE_free>;
using X509StoreCtx = Owned<X509_STORE_CTX, X509_STORE_CTX_free>;
using Asn1Integer = Owned<ASN1_INTEGER, ASN1_INTEGER_free>;
using Asn1Time = Owned<ASN1_TIME, ASN1_TIME_free>;
using BigNum = Owned<BIGNUM, BN_free>;
using SslCtx = Owned<SSL_CTX, SSL_CTX_free>;
using Ssl = Owned<SSL, SSL_free>;
using GeneralNames = Owned<GENERAL_NAMES, GENERAL_NAMES_free>;

struct X509StackDeleter {
    void operator()(STACK_OF(X509) * s) const noexcept { sk_X509_pop_free(s, X509_free); }
};
using X509Stack = std::unique_ptr<STACK_OF(X509), X509StackDeleter>;

}  // namespace ossl
