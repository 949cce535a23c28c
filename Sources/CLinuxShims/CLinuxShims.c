#define _GNU_SOURCE
#include <sys/statvfs.h>
#include "CLinuxShims.h"
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <signal.h>
#include <unistd.h>
#include <linux/openat2.h>

#ifndef STATX_MNT_ID
#define STATX_MNT_ID 0x00001000U
#endif
#ifndef STATX_ATTR_MOUNT_ROOT
#define STATX_ATTR_MOUNT_ROOT 0x00002000
#endif

const int vr_O_NOATIME = O_NOATIME;
const int vr_O_PATH = O_PATH;
const int vr_AT_EMPTY_PATH = AT_EMPTY_PATH;
const uint64_t vr_STATX_ATTR_MOUNT_ROOT = STATX_ATTR_MOUNT_ROOT;
const uint32_t vr_STATX_BTIME = STATX_BTIME;
const uint32_t vr_STATX_MNT_ID = STATX_MNT_ID;
const int vr_UMOUNT_NOFOLLOW = UMOUNT_NOFOLLOW;

int vr_openat2_beneath(int dirfd, const char *path, int flags) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)flags;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

int vr_take_write_lease(int fd) { return fcntl(fd, F_SETLEASE, F_WRLCK); }

int vr_release_lease(int fd) { return fcntl(fd, F_SETLEASE, F_UNLCK); }

void vr_ignore_lease_break_signal(void) { signal(SIGIO, SIG_IGN); }

ssize_t vr_getdents64(int fd, void *buffer, size_t length) {
    return getdents64(fd, buffer, length);
}

int vr_statx(int dirfd, const char *path, int flags, vr_statx_t *out) {
    return vr_statx_fields(dirfd, path, flags, 1, out);
}

int vr_statx_fields(int dirfd, const char *path, int flags, int withBirthTime, vr_statx_t *out) {
    // No memset: a successful statx writes the whole struct (the kernel
    // zeroes what it does not fill), and a failed one is not read.
    struct statx sx;
    unsigned int mask = STATX_BASIC_STATS | STATX_MNT_ID | (withBirthTime ? STATX_BTIME : 0);
    int rc = statx(dirfd, path, flags, mask, &sx);
    if (rc != 0) return rc;
    out->mask = sx.stx_mask;
    out->attributes = sx.stx_attributes;
    out->attributesMask = sx.stx_attributes_mask;
    out->mode = sx.stx_mode;
    out->nlink = sx.stx_nlink;
    out->uid = sx.stx_uid;
    out->ino = sx.stx_ino;
    out->size = sx.stx_size;
    out->blocks = sx.stx_blocks;
    out->devMajor = sx.stx_dev_major;
    out->devMinor = sx.stx_dev_minor;
    out->mountID = (sx.stx_mask & STATX_MNT_ID) ? sx.stx_mnt_id : 0;
    out->atimeSec = sx.stx_atime.tv_sec; out->atimeNsec = sx.stx_atime.tv_nsec;
    out->btimeSec = sx.stx_btime.tv_sec; out->btimeNsec = sx.stx_btime.tv_nsec;
    out->ctimeSec = sx.stx_ctime.tv_sec; out->ctimeNsec = sx.stx_ctime.tv_nsec;
    out->mtimeSec = sx.stx_mtime.tv_sec; out->mtimeNsec = sx.stx_mtime.tv_nsec;
    return 0;
}

// Swift sees both `struct flock` and `flock(2)` as `flock`; this names the call.
int vr_flock(int fd, int operation) {
    return flock(fd, operation);
}

static void vr_space_from(const struct statvfs *result, vr_space_t *out) {
    out->total_bytes = (uint64_t)result->f_blocks * result->f_frsize;
    out->available_bytes = (uint64_t)result->f_bavail * result->f_frsize;
    out->total_inodes = (uint64_t)result->f_files;
    out->available_inodes = (uint64_t)result->f_favail;
}

int vr_fstatvfs(int fd, vr_space_t *out) {
    struct statvfs result;
    if (fstatvfs(fd, &result) != 0) return -1;
    vr_space_from(&result, out);
    return 0;
}

int vr_statvfs(const char *path, vr_space_t *out) {
    struct statvfs result;
    if (statvfs(path, &result) != 0) return -1;
    vr_space_from(&result, out);
    return 0;
}

int vr_pipe2(int fds[2], int nonBlocking) {
    return pipe2(fds, O_CLOEXEC | (nonBlocking ? O_NONBLOCK : 0));
}
