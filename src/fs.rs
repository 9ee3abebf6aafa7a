//! The common file-system model: what ext4 and XFS both offer to the commands above them.

use crate::error::{Error, Finding, Result};
use crate::image::BlockSource;
pub use crate::image::{Extent, read_by_extents};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// Which file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FsKind {
    /// ext2/3/4.
    Ext4,
    /// XFS.
    Xfs,
}

impl std::fmt::Display for FsKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FsKind::Ext4 => "ext4",
            FsKind::Xfs => "xfs",
        })
    }
}

/// Kinds of inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileType {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Character device.
    Char,
    /// Block device.
    Block,
    /// FIFO.
    Fifo,
    /// Socket.
    Socket,
    /// Anything else.
    Unknown,
}

impl FileType {
    /// From the `S_IFMT` bits of a mode.
    pub fn from_mode(mode: u16) -> Self {
        match mode & 0o170000 {
            0o100000 => FileType::File,
            0o040000 => FileType::Dir,
            0o120000 => FileType::Symlink,
            0o020000 => FileType::Char,
            0o060000 => FileType::Block,
            0o010000 => FileType::Fifo,
            0o140000 => FileType::Socket,
            _ => FileType::Unknown,
        }
    }

    /// From the file-type byte of a directory entry. ext4 (`EXT4_FT_*`) and XFS (`XFS_DIR3_FT_*`)
    /// use the same numbering; 0 (unknown) and anything above 7 give `None`.
    pub fn from_dirent(ft: u8) -> Option<Self> {
        Some(match ft {
            1 => FileType::File,
            2 => FileType::Dir,
            3 => FileType::Char,
            4 => FileType::Block,
            5 => FileType::Fifo,
            6 => FileType::Socket,
            7 => FileType::Symlink,
            _ => return None,
        })
    }

    /// One letter as `ls -l` shows it.
    pub fn letter(self) -> char {
        match self {
            FileType::File => '-',
            FileType::Dir => 'd',
            FileType::Symlink => 'l',
            FileType::Char => 'c',
            FileType::Block => 'b',
            FileType::Fifo => 'p',
            FileType::Socket => 's',
            FileType::Unknown => '?',
        }
    }
}

/// A timestamp: seconds since the epoch and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Timestamp {
    /// Seconds (may be negative).
    pub sec: i64,
    /// Nanoseconds.
    pub nsec: u32,
}

/// What `stat` shows, common to both file systems. File-system-specific fields go in `extra`.
#[derive(Debug, Clone, Serialize)]
pub struct Stat {
    /// Inode number.
    pub ino: u64,
    /// Kind of inode.
    pub file_type: FileType,
    /// Full mode including type bits.
    pub mode: u16,
    /// Link count.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Space used in 512-byte units.
    pub blocks_512: u64,
    /// Access time.
    pub atime: Timestamp,
    /// Modification time.
    pub mtime: Timestamp,
    /// Change time.
    pub ctime: Timestamp,
    /// Creation time, when the file system records it.
    pub crtime: Option<Timestamp>,
    /// Generation number.
    pub generation: u32,
    /// Inode flags as stored.
    pub flags: u64,
    /// Device number for char/block devices, as stored.
    pub rdev: Option<u64>,
    /// The device's major and minor numbers, decoded as the kernel decodes `rdev`.
    pub device: Option<DeviceNumber>,
    /// File-system-specific fields (the ones `debugfs stat` or `xfs_db inode; print` show).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A device node's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DeviceNumber {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
}

/// Merge adjacent extents (logically and physically contiguous, same written state), as the
/// manifest and the kernel-oracle comparisons do.
pub fn merge_extents(extents: &[Extent]) -> Vec<Extent> {
    let mut out: Vec<Extent> = Vec::with_capacity(extents.len());
    for e in extents {
        if let Some(last) = out.last_mut()
            && last.unwritten == e.unwritten
            && last.logical.checked_add(last.length) == Some(e.logical)
            && last.physical.checked_add(last.length) == Some(e.physical)
        {
            last.length += e.length;
            continue;
        }
        out.push(*e);
    }
    out
}

/// One directory entry.
#[derive(Debug, Clone, Serialize)]
pub struct DirEntry {
    /// The name, as bytes are stored (shown lossily as UTF-8).
    #[serde(serialize_with = "ser_name")]
    pub name: Vec<u8>,
    /// Inode number.
    pub ino: u64,
    /// Type from the directory entry, when the file system stores it.
    pub file_type: Option<FileType>,
}

/// A removed directory entry whose bytes are still in a directory block (debugfs `ls -d`).
#[derive(Debug, Clone, Serialize)]
pub struct RemovedDirEntry {
    /// The name, as the bytes are stored.
    #[serde(serialize_with = "ser_name")]
    pub name: Vec<u8>,
    /// The inode it named (since freed or reused, perhaps).
    pub ino: u64,
    /// Its record length as stored.
    pub rec_len: u64,
    /// The directory block it is in (fs block), and its byte offset there.
    pub block: u64,
    /// Byte offset in that block.
    pub offset: u64,
}

/// One extended attribute, as `getxattr(2)` shows it: the full name with its namespace prefix
/// (`user.`, `trusted.`, `security.`, `system.`) and the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Xattr {
    /// Full name, prefix included.
    #[serde(serialize_with = "ser_name")]
    pub name: Vec<u8>,
    /// The value's bytes (POSIX ACLs in the `posix_acl_xattr` form the kernel hands out).
    #[serde(serialize_with = "ser_hex")]
    pub value: Vec<u8>,
}

fn ser_hex<S: serde::Serializer>(v: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(v))
}

fn ser_name<S: serde::Serializer>(name: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(name))
}

/// The model both file systems implement. All methods are read-only.
pub trait FileSystem: Send + Sync {
    /// ext4 or XFS.
    fn kind(&self) -> FsKind;
    /// File-system block size in bytes.
    fn block_size(&self) -> u32;
    /// The root directory's inode number.
    fn root_ino(&self) -> u64;
    /// The source the file system reads from (raw or recovered).
    fn source(&self) -> &dyn BlockSource;
    /// Geometry, features and state, for `info` (a JSON object).
    fn info(&self) -> serde_json::Value;
    /// Inode attributes.
    fn stat(&self, ino: u64) -> Result<Stat>;
    /// The kind of an inode: `stat(ino)?.file_type`, which a model may find without building
    /// the whole [`Stat`] (path lookups ask this of every component).
    fn file_type(&self, ino: u64) -> Result<FileType> {
        Ok(self.stat(ino)?.file_type)
    }
    /// The kind and size of an inode: `stat(ino)?`'s `file_type` and `size`, which a model may
    /// find without building the whole [`Stat`] (`check` asks this of every claim).
    fn type_and_size(&self, ino: u64) -> Result<(FileType, u64)> {
        let st = self.stat(ino)?;
        Ok((st.file_type, st.size))
    }
    /// The data extents of an inode, sorted by logical block. Empty for inline/local data.
    fn map(&self, ino: u64) -> Result<Vec<Extent>>;
    /// Entries of a directory, without "." and "..".
    fn read_dir(&self, ino: u64) -> Result<Vec<DirEntry>>;
    /// The target of a symbolic link.
    fn read_link(&self, ino: u64) -> Result<Vec<u8>>;
    /// Read `len` bytes of a file at `offset` (short at end of file). Holes and unwritten
    /// extents read as zeros. The default reads through [`FileSystem::map`]; file systems with
    /// inline data override it.
    fn read(&self, ino: u64, offset: u64, len: usize) -> Result<Vec<u8>> {
        let st = self.stat(ino)?;
        let extents = self.map(ino)?;
        read_by_extents(self.source(), self.block_size(), st.size, &extents, offset, len)
    }
    /// Everything found wrong so far (checksums, skipped pointers).
    fn findings(&self) -> Vec<Finding>;
    /// For each block (in the units of [`FileSystem::map`]'s `physical`), the inode that owns
    /// it, as `debugfs icheck` answers: data, extent-tree or bmbt blocks, xattr blocks. `None`
    /// for a block no inode owns. The default says the model cannot answer.
    fn icheck(&self, blocks: &[u64]) -> Result<Vec<Option<u64>>> {
        let _ = blocks;
        Err(Error::Unsupported(format!("icheck on {}", self.kind())))
    }
    /// The removed entries whose bytes are still in directory `ino`'s blocks, in block order
    /// (debugfs `ls -d`). The default says the model cannot find them.
    fn removed_entries(&self, ino: u64) -> Result<Vec<RemovedDirEntry>> {
        let _ = ino;
        Err(Error::Unsupported(format!("removed directory entries on {}", self.kind())))
    }
    /// The extended attributes of inode `ino`, in the order they are stored. The default says
    /// the model cannot read them.
    fn xattrs(&self, ino: u64) -> Result<Vec<Xattr>> {
        let _ = ino;
        Err(Error::Unsupported(format!("extended attributes on {}", self.kind())))
    }
    /// Whether the kernel's lookup of a directory entry naming `ino` gives the inode, or fails
    /// (a deleted inode, an inode whose checksum fails): a path whose lookup fails cannot be
    /// opened after the mount. The default accepts every inode.
    fn lookup_check(&self, ino: u64) -> Result<()> {
        let _ = ino;
        Ok(())
    }
    /// Whether the kernel can read file `ino`'s block map (every node of its extent tree checks):
    /// a file whose reads fail after the mount. The default accepts every file.
    fn read_check(&self, ino: u64) -> Result<()> {
        let _ = ino;
        Ok(())
    }
    /// Whether the kernel can list directory `ino` (its blocks' checksums hold): a directory it
    /// cannot list shows nothing after the mount. The default accepts every directory.
    fn readdir_check(&self, ino: u64) -> Result<()> {
        let _ = ino;
        Ok(())
    }
}

/// Maximum symlinks followed in one lookup (as the kernel's MAXSYMLINKS).
pub const MAX_SYMLINKS: u32 = 40;

/// Resolve an absolute path to an inode. Intermediate symlinks are followed; the last component
/// is not (like `lstat`), unless the path ends with `/`.
pub fn lookup(fs: &dyn FileSystem, path: &str) -> Result<u64> {
    resolve(fs, path, false)
}

/// [`lookup`], following a symbolic link in the last component too when `follow_last` (like
/// `stat` rather than `lstat`).
pub fn resolve(fs: &dyn FileSystem, path: &str, follow_last: bool) -> Result<u64> {
    let find =
        |dir: u64, name: &[u8]| Ok(fs.read_dir(dir)?.into_iter().find(|e| e.name == name).map(|e| e.ino));
    lookup_inner(fs, &find, path.as_bytes(), follow_last)
}

/// Resolves many paths against one file system, reading each directory once: the entries of a
/// directory are indexed by name the first time a path goes through it (for `check`, whose
/// claims mostly share their directories). Results are those of [`lookup`].
pub struct Resolver<'a> {
    fs: &'a dyn FileSystem,
    /// Directory inode -> (name -> inode). Bounded by the directories the paths go through.
    dirs: std::cell::RefCell<HashMap<u64, HashMap<Vec<u8>, u64>>>,
}

impl<'a> Resolver<'a> {
    /// A resolver with an empty cache over `fs`.
    pub fn new(fs: &'a dyn FileSystem) -> Self {
        Self { fs, dirs: Default::default() }
    }

    /// [`lookup`] of `path`.
    pub fn lookup(&self, path: &str) -> Result<u64> {
        let find = |dir: u64, name: &[u8]| -> Result<Option<u64>> {
            let refused = |e: Error| Error::NotFound(format!("the kernel's lookup fails: {e}"));
            let cached = self.dirs.borrow().get(&dir).map(|d| d.get(name).copied());
            if let Some(found) = cached {
                if let Some(ino) = found {
                    self.fs.lookup_check(ino).map_err(refused)?;
                }
                return Ok(found);
            }
            // A directory the kernel cannot list, or an entry it cannot look up, is a path that
            // does not open after the mount.
            self.fs.readdir_check(dir).map_err(refused)?;
            let mut index = HashMap::new();
            for e in self.fs.read_dir(dir)? {
                // The first entry of a name wins, as [`lookup`]'s linear search finds it.
                index.entry(e.name).or_insert(e.ino);
            }
            let found = index.get(name).copied();
            self.dirs.borrow_mut().insert(dir, index);
            if let Some(ino) = found {
                self.fs.lookup_check(ino).map_err(refused)?;
            }
            Ok(found)
        };
        lookup_inner(self.fs, &find, path.as_bytes(), false)
    }
}

/// The entry `name` of directory `dir`: its inode, or None.
type FindEntry<'f> = dyn Fn(u64, &[u8]) -> Result<Option<u64>> + 'f;

/// One path walk: the entry finder, the symbolic links followed so far and the path asked for
/// (errors name it).
struct Walk<'a, 'f> {
    fs: &'a dyn FileSystem,
    find: &'a FindEntry<'f>,
    links: u32,
    whole: String,
}

fn lookup_inner(fs: &dyn FileSystem, find: &FindEntry<'_>, path: &[u8], follow_last: bool) -> Result<u64> {
    let mut w = Walk { fs, find, links: 0, whole: String::from_utf8_lossy(path).into_owned() };
    let mut chain = vec![fs.root_ino()];
    w.path(&mut chain, path, follow_last, "")?;
    Ok(chain[chain.len() - 1])
}

impl Walk<'_, '_> {
    /// Walk `path` from the last inode of `chain`, the inodes from the root to the current one
    /// (the kernel's chain of dentries: `..` goes back along it, as `follow_dotdot` goes to
    /// the parent dentry, and stays at the root). Every component but the last must name a
    /// directory once symbolic links are followed (`link_path_walk` fails with ENOTDIR), so
    /// `file/..` and `file/x` fail; a path ending in `/` must name a directory and follows a
    /// final symbolic link. `shown` prefixes the names in errors (the link being followed).
    fn path(&mut self, chain: &mut Vec<u64>, path: &[u8], follow_last: bool, shown: &str) -> Result<()> {
        if path.first() == Some(&b'/') {
            chain.truncate(1);
        }
        let comps: Vec<&[u8]> = path.split(|c| *c == b'/').filter(|c| !c.is_empty()).collect();
        let trailing_slash = !comps.is_empty() && path.last() == Some(&b'/');
        let prefix = |n: usize| {
            let lead = if path.first() == Some(&b'/') { "/" } else { "" };
            let parts: Vec<String> =
                comps[..n].iter().map(|c| String::from_utf8_lossy(c).into_owned()).collect();
            format!("{shown}{lead}{}", parts.join("/"))
        };
        for (i, comp) in comps.iter().enumerate() {
            let cur = chain[chain.len() - 1];
            if self.fs.file_type(cur)? != FileType::Dir {
                return Err(self.not_a_directory(&prefix(i)));
            }
            match *comp {
                b"." => {}
                b".." => {
                    if chain.len() > 1 {
                        chain.pop();
                    }
                }
                name => {
                    let Some(next) = (self.find)(cur, name)? else {
                        let missing = prefix(i + 1);
                        return Err(Error::NotFound(if missing == self.whole {
                            missing
                        } else {
                            format!("{}: {missing} does not exist", self.whole)
                        }));
                    };
                    let last = i + 1 == comps.len();
                    if (!last || follow_last || trailing_slash)
                        && self.fs.file_type(next)? == FileType::Symlink
                    {
                        self.links += 1;
                        if self.links > MAX_SYMLINKS {
                            return Err(Error::NotFound(format!("{}: too many symbolic links", self.whole)));
                        }
                        let target = self.fs.read_link(next)?;
                        // The target is resolved from the directory holding the link.
                        let via = format!("{} -> ", prefix(i + 1));
                        self.path(chain, &target, true, &via)?;
                    } else {
                        chain.push(next);
                    }
                }
            }
        }
        if trailing_slash && self.fs.file_type(chain[chain.len() - 1])? != FileType::Dir {
            return Err(self.not_a_directory(&prefix(comps.len())));
        }
        Ok(())
    }

    fn not_a_directory(&self, what: &str) -> Error {
        Error::NotFound(format!("{}: {what} is not a directory", self.whole))
    }
}

/// A node found by [`walk`].
#[derive(Debug, Clone)]
pub struct WalkEntry {
    /// Absolute path.
    pub path: String,
    /// Inode number.
    pub ino: u64,
    /// Type from the directory entry (or the inode when the entry has none).
    pub file_type: FileType,
}

/// Walk the tree from `start_path` depth-first, in directory order, never entering a directory
/// twice. Errors on one directory are recorded in `errors` and the walk goes on.
pub fn walk(
    fs: &dyn FileSystem,
    start_path: &str,
    errors: &mut Vec<(String, Error)>,
) -> Result<Vec<WalkEntry>> {
    let start = lookup(fs, start_path)?;
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let base = if start_path == "/" || start_path.is_empty() {
        String::new()
    } else {
        start_path.trim_end_matches('/').to_string()
    };
    let mut stack = vec![(base, start)];
    seen.insert(start);
    while let Some((dir_path, dir_ino)) = stack.pop() {
        let entries = match fs.readdir_check(dir_ino).and_then(|()| fs.read_dir(dir_ino)) {
            Ok(e) => e,
            Err(e) => {
                errors.push((if dir_path.is_empty() { "/".into() } else { dir_path.clone() }, e));
                continue;
            }
        };
        let mut subdirs = Vec::new();
        for ent in entries {
            let path = format!("{}/{}", dir_path, String::from_utf8_lossy(&ent.name));
            if let Err(e) = fs.lookup_check(ent.ino) {
                errors.push((path, e));
                continue;
            }
            let ft = match ent.file_type {
                Some(t) if t != FileType::Unknown => t,
                _ => match fs.stat(ent.ino) {
                    Ok(s) => s.file_type,
                    Err(e) => {
                        errors.push((path, e));
                        continue;
                    }
                },
            };
            if ft == FileType::Dir && seen.insert(ent.ino) {
                subdirs.push((path.clone(), ent.ino));
            }
            out.push(WalkEntry { path, ino: ent.ino, file_type: ft });
        }
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(out)
}
