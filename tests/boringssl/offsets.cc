// Prints where BoringSSL keeps what ecapture's BPF program reads
// (bpf/openssl.bpf.c, struct lib_offsets of bpf/abi.h), computed by the
// compiler from BoringSSL's own internal headers: ssl/internal.h (the SSL
// object, SSL3_STATE) and the BIO (include/openssl/bio.h, or
// crypto/bio/internal.h once it became private). tests/boringssl/build.sh
// compiles it against the BoringSSL it builds and writes the output to
// target/boringssl/offsets.txt; a unit test (src/modules/openssl/version.rs)
// compares it with ecapture's BoringSSL layouts. Offsets are relative to
// the public pointers the program passes around (SSL *, BIO *).
//
// It compiles against every BoringSSL layout ecapture knows:
//   - the SSL object is `struct ssl_st` itself, or (newer) a class
//     `bssl::SSLImpl` derived from an empty `ssl_st` (ssl_st::ImplType);
//     the BIO likewise `struct bio_st` or `bssl::Bio`;
//   - the protocol version is `ssl_st::version` (older) or, once that was
//     removed, `SSL3_STATE::version` behind the `s3` pointer.
// Nothing is constructed: the bit of the `server` bitfield is found by
// setting it in zeroed storage.
//
// Output: one "name value" line per offset (decimal), see main().

#include <openssl/bio.h>
#include <openssl/ssl.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <type_traits>

#include "ssl/internal.h"
#if __has_include("crypto/bio/internal.h")
#include "crypto/bio/internal.h"
#endif

namespace {

// T::ImplType when the public struct is an opaque front of a class, else T.
template <typename T, typename = void>
struct Impl {
  using type = T;
};
template <typename T>
struct Impl<T, std::void_t<typename T::ImplType>> {
  using type = typename T::ImplType;
};

using SslImpl = Impl<ssl_st>::type;
using BioImpl = Impl<bio_st>::type;

// Whether the SSL object has its own `version` member (older layouts).
template <typename T, typename = void>
struct HasVersion : std::false_type {};
template <typename T>
struct HasVersion<T, std::void_t<decltype(&T::version)>> : std::true_type {};

// Offset of the public base inside the implementation class: the pointer the
// program holds (SSL *, BIO *) points there.
template <typename Public, typename Full>
ptrdiff_t base_offset() {
  alignas(Full) static unsigned char storage[sizeof(Full)];
  Full *full = reinterpret_cast<Full *>(storage);
  return reinterpret_cast<unsigned char *>(static_cast<Public *>(full)) - storage;
}

// offsetof() of a member of a (possibly non-standard-layout, but never
// virtual) class, through the address of the member in storage.
template <typename Full, typename M>
ptrdiff_t member_offset(M Full::*member) {
  alignas(Full) static unsigned char storage[sizeof(Full)];
  Full *full = reinterpret_cast<Full *>(storage);
  return reinterpret_cast<unsigned char *>(&(full->*member)) - storage;
}

void put(const char *name, long long v) { printf("%s %lld\n", name, v); }

// The protocol version: a member of the SSL object (older layouts) or of
// SSL3_STATE behind its `s3` pointer. A template so that only the branch of
// this layout is compiled.
template <typename S, typename S3>
void print_version(ptrdiff_t ssl_base) {
  if constexpr (HasVersion<S>::value) {
    put("ssl_version_in_s3", 0);
    put("ssl_version", member_offset(&S::version) - ssl_base);
    put("ssl_version_size", sizeof(S::version));
  } else {
    put("ssl_version_in_s3", 1);
    put("ssl_s3", member_offset(&S::s3) - ssl_base);
    put("ssl_version", member_offset(&S3::version));
    put("ssl_version_size", sizeof(S3::version));
  }
}

}  // namespace

int main() {
  const ptrdiff_t ssl_base = base_offset<ssl_st, SslImpl>();
  const ptrdiff_t bio_base = base_offset<bio_st, BioImpl>();

  print_version<SslImpl, bssl::SSL3_STATE>(ssl_base);
  put("ssl_rbio", member_offset(&SslImpl::rbio) - ssl_base);
  put("ssl_wbio", member_offset(&SslImpl::wbio) - ssl_base);

  // `bool server : 1`: set it in zeroed storage and see which bit moved.
  alignas(SslImpl) static unsigned char storage[sizeof(SslImpl)];
  memset(storage, 0, sizeof(storage));
  reinterpret_cast<SslImpl *>(storage)->server = true;
  int found = 0;
  for (size_t i = 0; i < sizeof(storage); i++) {
    if (storage[i]) {
      put("ssl_server", (long long)i - ssl_base);
      put("ssl_server_mask", storage[i]);
      found++;
    }
  }
  if (found != 1) {
    fprintf(stderr, "offsets: the server bit is not in exactly one byte\n");
    return 1;
  }

  // The key log (bssl::ssl_log_secret, whose first argument is the SSL
  // object itself: SSLImpl or ssl_st): the client random in SSL3_STATE,
  // behind `s3`; ssl_base 0: that pointer is also the program's SSL *.
  put("ssl_base", ssl_base);
  put("keylog_ssl_s3", member_offset(&SslImpl::s3));
  put("s3_client_random", member_offset(&bssl::SSL3_STATE::client_random));
  put("s3_client_random_size", sizeof(bssl::SSL3_STATE::client_random));

  put("bio_method", member_offset(&BioImpl::method) - bio_base);
  put("bio_num", member_offset(&BioImpl::num) - bio_base);
  put("bio_method_type", offsetof(BIO_METHOD, type));
  put("bio_type_socket", BIO_TYPE_SOCKET);
  put("bio_type_fd", BIO_TYPE_FD);
  return 0;
}
