// Sanitizer builds only. pkcs11-provider dlopens the PKCS#11 module with RTLD_DEEPBIND,
// which AddressSanitizer refuses outright (google/sanitizers#611). This definition, exported
// from the executable, takes precedence over the sanitizer's interceptor for every caller in
// the process; it drops that one flag and hands over to the interceptor. Release builds never
// contain it.

#include <dlfcn.h>

extern "C" void* dlopen(const char* file, int mode) {
    using DlopenFn = void* (*)(const char*, int);
    static const auto next = reinterpret_cast<DlopenFn>(dlsym(RTLD_NEXT, "dlopen"));
    return next(file, mode & ~RTLD_DEEPBIND);
}
