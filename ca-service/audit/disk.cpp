#include "audit/disk.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

namespace ca::audit {

int PosixDisk::open(const std::filesystem::path& path, int flags, mode_t mode) {
    return ::open(path.c_str(), flags, mode);
}
ssize_t PosixDisk::write(int fd, const void* data, std::size_t size) {
    return ::write(fd, data, size);
}
int PosixDisk::fdatasync(int fd) {
    return ::fdatasync(fd);
}
int PosixDisk::fsync(int fd) {
    return ::fsync(fd);
}
int PosixDisk::ftruncate(int fd, off_t size) {
    return ::ftruncate(fd, size);
}
int PosixDisk::rename(const std::filesystem::path& from, const std::filesystem::path& to) {
    return std::rename(from.c_str(), to.c_str());
}

}  // namespace ca::audit
