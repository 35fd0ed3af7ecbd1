#pragma once
// The two file operations the audit writer depends on for durability, behind an interface so
// tests can make the disk fail (as root, permissions cannot).

#include <sys/types.h>

#include <cstddef>

namespace ca::audit {

class Disk {
public:
    virtual ~Disk() = default;
    // Same contracts as POSIX write(2) and fdatasync(2): -1 with errno set on failure.
    virtual ssize_t write(int fd, const void* data, std::size_t size) = 0;
    virtual int fdatasync(int fd) = 0;
};

// The real thing.
class PosixDisk final : public Disk {
public:
    ssize_t write(int fd, const void* data, std::size_t size) override;
    int fdatasync(int fd) override;
};

}  // namespace ca::audit
