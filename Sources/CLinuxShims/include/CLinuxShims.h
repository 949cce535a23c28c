// Linux interfaces that Swift's Glibc module hides behind _GNU_SOURCE
// (getdents64, statx, pipe2, O_NOATIME, umount2 flags), exposed as plain functions
// and constants so SystemCalls can wrap them once.
#ifndef VOLUME_REAPER_CLINUXSHIMS_H
#define VOLUME_REAPER_CLINUXSHIMS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// The fields of `struct statx` the agent uses, flattened so Swift need not
/// see the kernel header.
typedef struct {
    uint32_t mask;
    uint64_t attributes;
    uint64_t attributesMask;
    uint32_t mode;
    uint32_t nlink;
    uint32_t uid;
    uint64_t ino;
    uint64_t size;
    uint64_t blocks;
    uint32_t devMajor;
    uint32_t devMinor;
    uint64_t mountID;
    int64_t atimeSec; uint32_t atimeNsec;
    int64_t btimeSec; uint32_t btimeNsec;
    int64_t ctimeSec; uint32_t ctimeNsec;
    int64_t mtimeSec; uint32_t mtimeNsec;
} vr_statx_t;

ssize_t vr_getdents64(int fd, void *buffer, size_t length);
/// pipe2(2) with O_CLOEXEC, and O_NONBLOCK when `nonBlocking`.
int vr_pipe2(int fds[2], int nonBlocking);
int vr_flock(int fd, int operation);

/// statvfs(3), flattened: Swift sees the struct and the function of that name as one.
typedef struct {
    uint64_t total_bytes;
    uint64_t available_bytes;
    uint64_t total_inodes;
    uint64_t available_inodes;
} vr_space_t;
int vr_statvfs(const char *path, vr_space_t *out);
/// fstatvfs(3), on any descriptor (an O_PATH one included).
int vr_fstatvfs(int fd, vr_space_t *out);
int vr_statx(int dirfd, const char *path, int flags, vr_statx_t *out);
/// `vr_statx`, asking for the birth time only when `withBirthTime` is non-zero:
/// ext4 does extra work per call for it, and a tree walk never reads it.
int vr_statx_fields(int dirfd, const char *path, int flags, int withBirthTime, vr_statx_t *out);
/// `openat2(2)` (no glibc wrapper) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS
/// | RESOLVE_NO_MAGICLINKS: `path` cannot lead out of `dirfd`.
int vr_openat2_beneath(int dirfd, const char *path, int flags);

/// fcntl(F_SETLEASE, F_WRLCK): granted only while no other descriptor has
/// the file open; then another process's open waits until it is released.
int vr_take_write_lease(int fd);
/// fcntl(F_SETLEASE, F_UNLCK). Closing the descriptor alone leaves an opener
/// that is waiting on the lease blocked until lease-break-time (45 s).
int vr_release_lease(int fd);
/// A lease break signals the holder with SIGIO, whose default action ends
/// the process: ignored (the holder releases within microseconds anyway).
void vr_ignore_lease_break_signal(void);

extern const int vr_O_NOATIME;
extern const int vr_O_PATH;
extern const int vr_AT_EMPTY_PATH;
extern const uint64_t vr_STATX_ATTR_MOUNT_ROOT;
extern const uint32_t vr_STATX_BTIME;
extern const uint32_t vr_STATX_MNT_ID;
extern const int vr_UMOUNT_NOFOLLOW;

#endif
