//! The only module with `unsafe`: thin, checked wrappers over system calls that the standard
//! library does not offer (read-only mmap of images; in the guest agent, `MAP_SYNC` mappings,
//! cache-line flushes; on the host, `FS_IOC_FIEMAP`).
//!
//! Each function states why its `unsafe` block is sound. Everything else in daxray is safe Rust.

#![allow(unsafe_code)]

use std::fs::File;

/// Map `len` bytes of `file` read-only and shared.
///
/// The bytes may change under the mapping (a running guest writes its media), so callers treat
/// them as untrusted input and only ever copy them or parse them as plain integers.
pub fn map_readonly(file: &File, len: usize) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: read-only (PROT_READ) shared mapping of a file we opened read-only. memmap2's
    // safety requirement is that the file is not modified while mapped in a way that breaks Rust
    // aliasing assumptions; we only ever read plain bytes (u8), for which any value is valid, and
    // never hand out references into the map that outlive a parse.
    unsafe { memmap2::MmapOptions::new().len(len).map(file) }
}

// ---------------------------------------------------------------------------------------------
// Guest agent and VM host helpers.
// ---------------------------------------------------------------------------------------------

use std::os::fd::AsRawFd;

/// `MAP_SYNC` (0x80000 on x86-64 and the generic ABI).
pub const MAP_SYNC: i32 = 0x80000;
/// `MAP_SHARED_VALIDATE` (Linux 4.15): like `MAP_SHARED`, but unknown flags are refused.
pub const MAP_SHARED_VALIDATE: i32 = 0x3;
/// A flag bit no kernel defines (bit 21), for probing `MAP_SHARED_VALIDATE`'s refusal.
pub const MAP_UNKNOWN_FLAG: i32 = 0x200000;
/// `STATX_ATTR_DAX`.
pub const STATX_ATTR_DAX: u64 = 0x200000;

/// A shared, writable mapping of a file (`mmap(2)` with caller-chosen flags). Unmapped on drop.
///
/// All accesses go through bounds-checked methods; no Rust reference into the mapping is ever
/// handed out, so concurrent changes by the kernel or another process cannot break aliasing.
pub struct RawMap {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: RawMap owns its mapping and only exposes copy-in / copy-out methods; moving it to another
// thread is sound.
unsafe impl Send for RawMap {}

/// Map `len` bytes of `file` from offset 0, `PROT_READ | PROT_WRITE`, with `flags` (for example
/// `MAP_SHARED_VALIDATE | MAP_SYNC`). The raw `errno` is in the error.
pub fn map_shared_rw(file: &File, len: usize, flags: i32) -> std::io::Result<RawMap> {
    if len == 0 {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: a fresh mapping at a kernel-chosen address (no MAP_FIXED), so no existing memory is
    // replaced; the fd is valid for the duration of the call; the result is checked for
    // MAP_FAILED before use.
    let p = unsafe {
        libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, flags, file.as_raw_fd(), 0)
    };
    if p == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    Ok(RawMap { ptr: p.cast(), len })
}

/// Like [`map_shared_rw`], at an address that is a multiple of `align` (a power of two, at
/// least the page size): a PMD fault maps 2 MiB at once only where the virtual address and the
/// file offset agree modulo 2 MiB (`dax_fault_check_fallback` in fs/dax.c). An anonymous
/// `PROT_NONE` reservation of `len + align` bytes is made first, the file is mapped with
/// `MAP_FIXED` at the first aligned address inside it, and the rest of the reservation is
/// unmapped.
pub fn map_shared_rw_aligned(file: &File, len: usize, flags: i32, align: usize) -> std::io::Result<RawMap> {
    if len == 0 || !align.is_power_of_two() || align < 4096 {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    let span = len.checked_add(align).ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOMEM))?;
    // SAFETY: a fresh anonymous, inaccessible reservation at a kernel-chosen address (no
    // MAP_FIXED), so no existing memory is replaced; checked for MAP_FAILED before use.
    let r = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            span,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if r == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    let base = r as usize;
    let start = (base + align - 1) & !(align - 1);
    // SAFETY: `start..start + len` lies inside the reservation just made (start - base < align),
    // which this function owns and nothing else refers to, so MAP_FIXED replaces only it; the
    // fd is valid for the call.
    let p = unsafe {
        libc::mmap(
            start as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags | libc::MAP_FIXED,
            file.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        let e = std::io::Error::last_os_error();
        // SAFETY: the whole reservation is still ours and unused.
        unsafe { libc::munmap(r, span) };
        return Err(e);
    }
    let head = start - base;
    let tail = span - head - len;
    if head > 0 {
        // SAFETY: `base..start` is the part of our reservation before the file mapping.
        unsafe { libc::munmap(r, head) };
    }
    if tail > 0 {
        // SAFETY: `start + len..base + span` is the part of our reservation after the file
        // mapping.
        unsafe { libc::munmap((start + len) as *mut libc::c_void, tail) };
    }
    Ok(RawMap { ptr: p.cast(), len })
}

impl RawMap {
    /// Start address of the mapping (to find it in `/proc/self/smaps`).
    pub fn addr(&self) -> usize {
        self.ptr as usize
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the mapping is empty (never, by construction).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check(&self, offset: usize, n: usize) -> std::io::Result<()> {
        match offset.checked_add(n) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("range {offset}+{n} outside a mapping of {} bytes", self.len),
            )),
        }
    }

    /// Store `bytes` at `offset` through the mapping (this is what takes the write fault).
    pub fn store(&self, offset: usize, bytes: &[u8]) -> std::io::Result<()> {
        self.check(offset, bytes.len())?;
        // SAFETY: the range is inside the mapping (checked above), the mapping is writable and
        // lives as long as self; the source is a separate Rust slice, so they do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(offset), bytes.len()) };
        Ok(())
    }

    /// Copy `n` bytes at `offset` out of the mapping.
    pub fn load(&self, offset: usize, n: usize) -> std::io::Result<Vec<u8>> {
        self.check(offset, n)?;
        let mut v = vec![0u8; n];
        // SAFETY: the range is inside the mapping (checked above); the destination is a fresh Vec.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.add(offset), v.as_mut_ptr(), n) };
        Ok(v)
    }

    /// Write back the cache lines of `offset..offset+n` (`clflush` each 64-byte line, then
    /// `sfence`), so the stored bytes are on the media, as a pmem program must.
    pub fn flush(&self, offset: usize, n: usize) -> std::io::Result<()> {
        self.check(offset, n)?;
        #[cfg(target_arch = "x86_64")]
        {
            let start = offset & !63;
            let mut line = start;
            while line < offset + n {
                // SAFETY: `line` is inside the mapping (it starts at or before `offset`, rounded
                // down to a cache line inside the page-aligned mapping, and stays below
                // offset+n <= len); clflush only needs a mapped address and SSE2, which every
                // x86-64 CPU has.
                unsafe { std::arch::x86_64::_mm_clflush(self.ptr.add(line)) };
                line += 64;
            }
            // SAFETY: sfence needs SSE, part of the x86-64 baseline.
            unsafe { std::arch::x86_64::_mm_sfence() };
        }
        #[cfg(not(target_arch = "x86_64"))]
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// `madvise(MADV_NOHUGEPAGE)` over the whole mapping: faults stay 4 KiB PTE faults (a DAX
    /// file of 2 MiB or more, mapped 2 MiB-aligned, otherwise gets a PMD fault attempt first,
    /// which allocates the whole 2 MiB extent even when it then falls back to PTEs).
    pub fn no_huge_pages(&self) -> std::io::Result<()> {
        // SAFETY: the range is exactly our mapping; MADV_NOHUGEPAGE changes no memory contents.
        let r = unsafe { libc::madvise(self.ptr.cast(), self.len, libc::MADV_NOHUGEPAGE) };
        if r != 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
    }

    /// `msync(MS_SYNC)` over the pages holding `offset..offset+n`.
    pub fn msync(&self, offset: usize, n: usize) -> std::io::Result<()> {
        self.check(offset, n)?;
        let start = offset & !4095;
        // SAFETY: the page-aligned range lies inside our mapping (start <= offset, end <= len
        // rounded within the mapping, which the kernel sized in whole pages).
        let r = unsafe { libc::msync(self.ptr.add(start).cast(), offset + n - start, libc::MS_SYNC) };
        if r != 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
    }
}

impl Drop for RawMap {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned and nothing refers into the mapping
        // after drop (no references were ever handed out).
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// `statx(path)`: returns `(stx_attributes_mask, stx_attributes)`.
pub fn statx_attributes(path: &std::path::Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has a NUL byte"))?;
    // SAFETY: statx is plain old data; all-zero is a valid value.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a valid, writable statx buffer.
    let r = unsafe { libc::statx(libc::AT_FDCWD, c.as_ptr(), 0, libc::STATX_BASIC_STATS, &mut st) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((st.stx_attributes_mask, st.stx_attributes))
}

/// Put a terminal (the guest's `/dev/ttyS1`) into raw mode: no echo, no line editing, no output
/// processing, 8-bit clean.
pub fn set_raw_tty(file: &File) -> std::io::Result<()> {
    // SAFETY: termios is plain old data; all-zero is a valid starting value for tcgetattr.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd, valid writable termios.
    if unsafe { libc::tcgetattr(file.as_raw_fd(), &mut t) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: cfmakeraw only edits the struct we own.
    unsafe { libc::cfmakeraw(&mut t) };
    t.c_cflag |= libc::CLOCAL | libc::CREAD;
    t.c_cc[libc::VMIN] = 1;
    t.c_cc[libc::VTIME] = 0;
    // SAFETY: cfsetspeed edits our struct; 115200 is a valid speed constant.
    unsafe {
        libc::cfsetispeed(&mut t, libc::B115200);
        libc::cfsetospeed(&mut t, libc::B115200);
    }
    // SAFETY: valid fd, valid termios.
    if unsafe { libc::tcsetattr(file.as_raw_fd(), libc::TCSANOW, &t) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `tcdrain(fd)`: wait until everything written to a terminal has been transmitted (the guest
/// agent calls it so that no message is still in the UART when it powers off).
pub fn tcdrain(file: &File) -> std::io::Result<()> {
    // SAFETY: plain syscall on a valid fd.
    if unsafe { libc::tcdrain(file.as_raw_fd()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Take an exclusive `flock` on `file`, blocking until it is free (released when the file is
/// closed). Used to run VM tests one at a time.
pub fn flock_exclusive(file: &File) -> std::io::Result<()> {
    loop {
        // SAFETY: plain syscall on a valid fd.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// Try to take an exclusive `flock` on `file` without blocking: `Ok(false)` when another open
/// file holds it.
pub fn flock_try_exclusive(file: &File) -> std::io::Result<bool> {
    // SAFETY: plain syscall on a valid fd.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) { Ok(false) } else { Err(e) }
}

/// `sync(2)` then power the machine off (`reboot(RB_POWER_OFF)`); only returns on failure.
/// This is how the guest agent (PID 1) ends every run.
pub fn sync_and_power_off() -> std::io::Error {
    // SAFETY: sync has no arguments and cannot fail.
    unsafe { libc::sync() };
    // SAFETY: reboot with a valid command; it does not return on success.
    unsafe { libc::reboot(libc::RB_POWER_OFF) };
    std::io::Error::last_os_error()
}

/// `FS_IOC_FIEMAP`: `_IOWR('f', 11, struct fiemap)` with `sizeof(struct fiemap) == 32`.
const FS_IOC_FIEMAP: u64 = 0xC020_660B;

/// Extents asked for per `FS_IOC_FIEMAP` call.
const FIEMAP_BATCH: usize = 256;

/// `struct fiemap` (linux/fiemap.h), the fixed header.
#[repr(C)]
#[derive(Clone, Copy)]
struct FiemapHeader {
    fm_start: u64,
    fm_length: u64,
    fm_flags: u32,
    fm_mapped_extents: u32,
    fm_extent_count: u32,
    fm_reserved: u32,
}
const _: () = assert!(size_of::<FiemapHeader>() == 32);

/// `struct fiemap_extent` (linux/fiemap.h) as the kernel fills it in.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FiemapExtent {
    /// Logical byte offset in the file.
    pub fe_logical: u64,
    /// Physical byte offset on the device.
    pub fe_physical: u64,
    /// Length in bytes.
    pub fe_length: u64,
    fe_reserved64: [u64; 2],
    /// `FIEMAP_EXTENT_*` flags.
    pub fe_flags: u32,
    fe_reserved: [u32; 3],
}
const _: () = assert!(size_of::<FiemapExtent>() == 56);

impl FiemapExtent {
    const ZERO: FiemapExtent = FiemapExtent {
        fe_logical: 0,
        fe_physical: 0,
        fe_length: 0,
        fe_reserved64: [0; 2],
        fe_flags: 0,
        fe_reserved: [0; 3],
    };
}

/// The ioctl argument: header followed by room for [`FIEMAP_BATCH`] extents.
#[repr(C)]
struct FiemapBuf {
    hdr: FiemapHeader,
    ext: [FiemapExtent; FIEMAP_BATCH],
}

/// `FIEMAP_FLAG_SYNC`: write the file's dirty data back before mapping it.
pub const FIEMAP_FLAG_SYNC: u32 = 0x1;

/// One `FS_IOC_FIEMAP` call on `file` for bytes `start..start+len`: up to 256 extents, in
/// logical order. Callers loop (from the end of the last extent) until an extent carries
/// `FIEMAP_EXTENT_LAST` or none is returned.
pub fn fiemap(file: &File, start: u64, len: u64, flags: u32) -> std::io::Result<Vec<FiemapExtent>> {
    use std::os::fd::AsRawFd;
    let mut buf = Box::new(FiemapBuf {
        hdr: FiemapHeader {
            fm_start: start,
            fm_length: len,
            fm_flags: flags,
            fm_mapped_extents: 0,
            fm_extent_count: FIEMAP_BATCH as u32,
            fm_reserved: 0,
        },
        ext: [FiemapExtent::ZERO; FIEMAP_BATCH],
    });
    // SAFETY: `buf` is a live, exclusively borrowed, properly aligned `struct fiemap` followed by
    // `fm_extent_count` (256) `struct fiemap_extent` slots, which is exactly the memory the
    // kernel may write for FS_IOC_FIEMAP; the fd is open for the whole call.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_FIEMAP as _, &mut *buf as *mut FiemapBuf) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let n = (buf.hdr.fm_mapped_extents as usize).min(FIEMAP_BATCH);
    Ok(buf.ext[..n].to_vec())
}

/// `fallocate(2)` on `file` with `mode` (`libc::FALLOC_FL_*`) over `offset..offset+len`.
pub fn fallocate(file: &File, mode: i32, offset: u64, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let off = i64::try_from(offset).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let l = i64::try_from(len).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: fallocate takes only integers and an fd that stays open for the call; it touches no
    // memory of ours.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), mode, off, l) };
    if rc < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
}

/// `lseek(fd, offset, whence)` for `SEEK_DATA` / `SEEK_HOLE`: `Ok(None)` when the kernel says
/// `ENXIO` (no more data after `offset`).
fn seek_whence(file: &File, offset: u64, whence: i32) -> std::io::Result<Option<u64>> {
    use std::os::fd::AsRawFd;
    let off = i64::try_from(offset).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: lseek takes only integers and an fd that stays open for the call.
    let rc = unsafe { libc::lseek(file.as_raw_fd(), off, whence) };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENXIO) {
            return Ok(None);
        }
        return Err(e);
    }
    Ok(Some(rc as u64))
}

/// The first byte at or after `offset` that holds data (`lseek(SEEK_DATA)`), `None` past the last.
pub fn seek_data(file: &File, offset: u64) -> std::io::Result<Option<u64>> {
    seek_whence(file, offset, libc::SEEK_DATA)
}

/// The first hole at or after `offset` (`lseek(SEEK_HOLE)`; end of file counts as a hole).
pub fn seek_hole(file: &File, offset: u64) -> std::io::Result<Option<u64>> {
    seek_whence(file, offset, libc::SEEK_HOLE)
}

/// The block size of the file system holding `file` (`fstatvfs(2)` `f_bsize`).
pub fn fs_block_size(file: &File) -> std::io::Result<u64> {
    use std::os::fd::AsRawFd;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `st` is valid writable memory of the size fstatvfs fills; the fd is open.
    let rc = unsafe { libc::fstatvfs(file.as_raw_fd(), st.as_mut_ptr()) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fstatvfs returned 0, so it initialised the whole struct (and it was zeroed before).
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)] // f_bsize is c_ulong; u64 on the targets we build for
    Ok(st.f_bsize as u64)
}

/// Whether the process runs with effective uid 0.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// How a child process ended, with its peak memory, from [`wait_child`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildExit {
    /// The exit code, when it exited normally.
    pub code: Option<i32>,
    /// The signal that killed it, when a signal did.
    pub signal: Option<i32>,
    /// Peak resident set size of the child (`ru_maxrss`), in KiB.
    pub max_rss_kib: u64,
}

/// Reap the child `pid` (`wait4`), returning how it ended and its own peak memory.
/// With `block == false` this returns `Ok(None)` while the child still runs (`WNOHANG`).
/// The child must not be waited for by any other means afterwards.
pub fn wait_child(pid: u32, block: bool) -> std::io::Result<Option<ChildExit>> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero `struct rusage` is a valid value (plain integers and timevals).
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let flags = if block { 0 } else { libc::WNOHANG };
    // SAFETY: wait4 writes only into `status` and `ru`, both valid, exclusively borrowed locals.
    let r = unsafe { libc::wait4(pid, &mut status, flags, &mut ru) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if r == 0 {
        return Ok(None);
    }
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let signal = libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status));
    Ok(Some(ChildExit { code, signal, max_rss_kib: u64::try_from(ru.ru_maxrss).unwrap_or(0) }))
}

/// `fsetxattr(2)`: set extended attribute `name` (e.g. "user.x") on an open file.
pub fn fsetxattr(file: &File, name: &str, value: &[u8]) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let cname = std::ffi::CString::new(name)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "xattr name has a NUL"))?;
    // SAFETY: the fd stays open for the call; `cname` is a NUL-terminated string and `value` a
    // valid slice, both alive for the call; the kernel only reads them.
    let rc =
        unsafe { libc::fsetxattr(file.as_raw_fd(), cname.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// `struct fsxattr` (linux/fs.h), for `FS_IOC_FSGETXATTR` / `FS_IOC_FSSETXATTR`.
#[repr(C)]
#[derive(Default)]
struct FsXattr {
    xflags: u32,
    extsize: u32,
    nextents: u32,
    projid: u32,
    cowextsize: u32,
    pad: [u8; 8],
}
const _: () = assert!(size_of::<FsXattr>() == 28);

/// Set an extent size hint (`FS_XFLAG_EXTSIZE`, `fsx_extsize`) on an empty file, so the file
/// system allocates (and aligns) in units of `bytes` (XFS honours it; 2 MiB enables PMD faults on
/// sparse files).
pub fn set_extsize_hint(file: &File, bytes: u32) -> std::io::Result<()> {
    const FS_IOC_FSGETXATTR: u64 = 0x801C_581F;
    const FS_IOC_FSSETXATTR: u64 = 0x401C_5820;
    const FS_XFLAG_EXTSIZE: u32 = 0x800;
    let mut x = FsXattr::default();
    // SAFETY: `x` is a live, properly sized and aligned struct fsxattr the kernel fills in.
    if unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_FSGETXATTR as _, &mut x as *mut FsXattr) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    x.xflags |= FS_XFLAG_EXTSIZE;
    x.extsize = bytes;
    // SAFETY: as above; the kernel only reads the struct.
    if unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_FSSETXATTR as _, &x as *const FsXattr) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
