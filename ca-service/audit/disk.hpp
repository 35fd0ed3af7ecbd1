#pragma once
// Every file operation the audit writer's durability depends on, behind one interface: open,
// write, fsync/fdatasync (files and the directory), ftruncate and rename. Tests supply a disk
// that fails on demand (as root, permissions cannot), or one that records what was synced, so
// that a simulated crash keeps only that and nothing the page cache happened to hold.

#include <sys/types.h>

#include <cstddef>
#include <filesystem>

namespace ca::audit {

class Disk {
public:
    virtual ~Disk() = default;
    // Same contracts as the POSIX calls: -1 with errno set on failure.
    virtual int open(const std::filesystem::path& path, int flags, mode_t mode) = 0;
    virtual ssize_t write(int fd, const void* data, std::size_t size) = 0;
    virtual int fdatasync(int fd) = 0;
    virtual int fsync(int fd) = 0;
    virtual int ftruncate(int fd, off_t size) = 0;
    virtual int rename(const std::filesystem::path& from, const std::filesystem::path& to) = 0;
};

// The real thing. Not final: test disks override a call and pass the rest through.
class PosixDisk : public Disk {
public:
    int open(const std::filesystem::path& path, int flags, mode_t mode) override;
    ssize_t write(int fd, const void* data, std::size_t size) override;
    int fdatasync(int fd) override;
    int fsync(int fd) override;
    int ftruncate(int fd, off_t size) override;
    int rename(const std::filesystem::path& from, const std::filesystem::path& to) override;
};

}  // namespace ca::audit
