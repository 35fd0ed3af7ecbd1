#include "audit/disk.hpp"

#include <unistd.h>

namespace ca::audit {

ssize_t PosixDisk::write(int fd, const void* data, std::size_t size) {
    return ::write(fd, data, size);
}
int PosixDisk::fdatasync(int fd) {
    return ::fdatasync(fd);
}

}  // namespace ca::audit
