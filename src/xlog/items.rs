//! Log items: their type codes and decoders (`xfs_log_format.h`). Item format structures are in
//! the writing host's native byte order, except `xfs_icreate_log`, dquots and buffer contents,
//! which are big-endian.

use super::trans::{Item, Native};
use crate::image::BlockSource;
use byteorder::{BigEndian, ByteOrder};
use serde::Serialize;
use serde_json::{Value, json};

/// Extent-free intent.
pub const LI_EFI: u16 = 0x1236;
/// Extent-free done.
pub const LI_EFD: u16 = 0x1237;
/// Inode unlink (in-memory only).
pub const LI_IUNLINK: u16 = 0x1238;
/// Inode.
pub const LI_INODE: u16 = 0x123b;
/// Buffer.
pub const LI_BUF: u16 = 0x123c;
/// Dquot.
pub const LI_DQUOT: u16 = 0x123d;
/// Quota off.
pub const LI_QUOTAOFF: u16 = 0x123e;
/// Inode chunk create.
pub const LI_ICREATE: u16 = 0x123f;
/// Rmap update intent.
pub const LI_RUI: u16 = 0x1240;
/// Rmap update done.
pub const LI_RUD: u16 = 0x1241;
/// Refcount update intent.
pub const LI_CUI: u16 = 0x1242;
/// Refcount update done.
pub const LI_CUD: u16 = 0x1243;
/// Bmap update intent.
pub const LI_BUI: u16 = 0x1244;
/// Bmap update done.
pub const LI_BUD: u16 = 0x1245;
/// Attr intent.
pub const LI_ATTRI: u16 = 0x1246;
/// Attr done.
pub const LI_ATTRD: u16 = 0x1247;
/// Mapping exchange intent.
pub const LI_XMI: u16 = 0x1248;
/// Mapping exchange done.
pub const LI_XMD: u16 = 0x1249;
/// Realtime EFI.
pub const LI_EFI_RT: u16 = 0x124a;
/// Realtime EFD.
pub const LI_EFD_RT: u16 = 0x124b;
/// Realtime RUI.
pub const LI_RUI_RT: u16 = 0x124c;
/// Realtime RUD.
pub const LI_RUD_RT: u16 = 0x124d;
/// Realtime CUI.
pub const LI_CUI_RT: u16 = 0x124e;
/// Realtime CUD.
pub const LI_CUD_RT: u16 = 0x124f;

/// Buffer flag: inode buffer (only di_next_unlinked replayed).
pub const BLF_INODE_BUF: u16 = 0x1;
/// Buffer flag: cancelled (freed).
pub const BLF_CANCEL: u16 = 0x2;
/// Buffer flags: dquot buffers.
pub const BLF_DQUOT_BUFS: u16 = 0x4 | 0x8 | 0x10;
/// Bytes per dirty-bitmap bit.
pub const BLF_CHUNK: usize = 128;

/// Inode log fields.
pub const ILOG_CORE: u32 = 0x001;
/// Data fork local data.
pub const ILOG_DDATA: u32 = 0x002;
/// Data fork extents.
pub const ILOG_DEXT: u32 = 0x004;
/// Data fork btree root.
pub const ILOG_DBROOT: u32 = 0x008;
/// Device number.
pub const ILOG_DEV: u32 = 0x010;
/// Attr fork local data.
pub const ILOG_ADATA: u32 = 0x040;
/// Attr fork extents.
pub const ILOG_AEXT: u32 = 0x080;
/// Attr fork btree root.
pub const ILOG_ABROOT: u32 = 0x100;
/// Data fork owner change.
pub const ILOG_DOWNER: u32 = 0x200;
/// Attr fork owner change.
pub const ILOG_AOWNER: u32 = 0x400;
/// Any data fork field.
pub const ILOG_DFORK: u32 = ILOG_DDATA | ILOG_DEXT | ILOG_DBROOT;
/// Any attr fork field.
pub const ILOG_AFORK: u32 = ILOG_ADATA | ILOG_AEXT | ILOG_ABROOT;

/// The type code of an item (first u16 of region 0).
pub fn item_type(it: &Item, n: Native, src: &dyn BlockSource) -> Option<u16> {
    n.u16(&it.regions.first()?.head(src, 2), 0)
}

/// The name of an item type, like xfs_logprint.
pub fn type_name(t: u16) -> &'static str {
    match t {
        LI_EFI => "EFI",
        LI_EFD => "EFD",
        LI_IUNLINK => "IUNLINK",
        LI_INODE => "INODE",
        LI_BUF => "BUF",
        LI_DQUOT => "DQUOT",
        LI_QUOTAOFF => "QUOTAOFF",
        LI_ICREATE => "ICREATE",
        LI_RUI => "RUI",
        LI_RUD => "RUD",
        LI_CUI => "CUI",
        LI_CUD => "CUD",
        LI_BUI => "BUI",
        LI_BUD => "BUD",
        LI_ATTRI => "ATTRI",
        LI_ATTRD => "ATTRD",
        LI_XMI => "XMI",
        LI_XMD => "XMD",
        LI_EFI_RT => "EFI_RT",
        LI_EFD_RT => "EFD_RT",
        LI_RUI_RT => "RUI_RT",
        LI_RUD_RT => "RUD_RT",
        LI_CUI_RT => "CUI_RT",
        LI_CUD_RT => "CUD_RT",
        _ => "UNKNOWN",
    }
}

/// A decoded buffer log format.
#[derive(Debug, Clone)]
pub struct BufFormat {
    /// blf_flags.
    pub flags: u16,
    /// Length in basic blocks.
    pub len: u16,
    /// Disk address (daddr).
    pub blkno: u64,
    /// Dirty bitmap words (the first `words` of them; at most 16 are read).
    pub map: [u32; 16],
    /// Words in the bitmap.
    pub words: usize,
}

impl BufFormat {
    /// Parse region 0 of a buffer item.
    pub fn parse(r: &[u8], n: Native) -> Option<Self> {
        let flags = n.u16(r, 4)?;
        let len = n.u16(r, 6)?;
        let blkno = n.u64(r, 8)?;
        let map_size = n.u32(r, 16)? as usize;
        let words = map_size.min(r.len().saturating_sub(20) / 4).min(16);
        let mut map = [0u32; 16];
        for (i, w) in map.iter_mut().enumerate().take(words) {
            *w = n.u32(r, 20 + 4 * i).unwrap_or(0);
        }
        Some(Self { flags, len, blkno, map, words })
    }
    /// Is bit `b` set in the dirty map?
    pub fn bit(&self, b: usize) -> bool {
        b / 32 < self.words && self.map.get(b / 32).is_some_and(|w| w & (1 << (b % 32)) != 0)
    }
    /// The first bit at or after `from` that is `set` (or clear), or [`BufFormat::nbits`] when
    /// there is none: a word at a time.
    pub fn next_bit(&self, from: usize, set: bool) -> usize {
        let nb = self.nbits();
        let mut w = from / 32;
        let word = |w: usize| self.map.get(w).map(|x| if set { *x } else { !*x }).unwrap_or(0);
        let mut m = if from < nb { word(w) & (u32::MAX << (from % 32)) } else { 0 };
        while w < self.words {
            if m != 0 {
                return (w * 32 + m.trailing_zeros() as usize).min(nb);
            }
            w += 1;
            m = if w < self.words { word(w) } else { 0 };
        }
        nb
    }
    /// Bits in the map.
    pub fn nbits(&self) -> usize {
        self.words * 32
    }
    /// The dirty runs (first chunk, chunks) in order.
    pub fn runs(&self) -> Vec<(usize, usize)> {
        let mut v = vec![];
        let mut b = 0;
        while b < self.nbits() {
            if self.bit(b) {
                let s = b;
                while b < self.nbits() && self.bit(b) {
                    b += 1;
                }
                v.push((s, b - s));
            } else {
                b += 1;
            }
        }
        v
    }
    /// The buffer type (`XFS_BLFT_*`) in the top 5 bits of the flags.
    pub fn blft(&self) -> u16 {
        self.flags >> 11
    }
}

/// A decoded inode log format (32- or 64-bit layout).
#[derive(Debug, Clone)]
pub struct InodeFormat {
    /// Regions in the item.
    pub size: u16,
    /// ilf_fields.
    pub fields: u32,
    /// Attr fork bytes logged.
    pub asize: u16,
    /// Data fork bytes logged.
    pub dsize: u16,
    /// Inode number.
    pub ino: u64,
    /// Device number (with ILOG_DEV).
    pub rdev: u32,
    /// Cluster buffer daddr.
    pub blkno: u64,
    /// Cluster buffer length in basic blocks.
    pub len: u32,
    /// Offset of the inode in the buffer.
    pub boffset: u32,
}

impl InodeFormat {
    /// Parse region 0 of an inode item: 56 bytes (64-bit) or 52 bytes (packed 32-bit).
    pub fn parse(r: &[u8], n: Native) -> Option<Self> {
        let (ino, u, blk) = if r.len() == 52 { (12, 20, 36) } else { (16, 24, 40) };
        Some(Self {
            size: n.u16(r, 2)?,
            fields: n.u32(r, 4)?,
            asize: n.u16(r, 8)?,
            dsize: n.u16(r, 10)?,
            ino: n.u64(r, ino)?,
            rdev: n.u32(r, u)?,
            blkno: n.u64(r, blk)?,
            len: n.u32(r, blk + 8)?,
            boffset: n.u32(r, blk + 12)?,
        })
    }
}

/// A decoded icreate item (big-endian).
#[derive(Debug, Clone, Copy)]
pub struct Icreate {
    /// AG.
    pub ag: u32,
    /// First AG block.
    pub agbno: u32,
    /// Inodes.
    pub count: u32,
    /// Inode size.
    pub isize: u32,
    /// Blocks.
    pub length: u32,
    /// Generation.
    pub generation: u32,
}

impl Icreate {
    /// Parse region 0 of an icreate item.
    pub fn parse(r: &[u8]) -> Option<Self> {
        let g = |at: usize| r.get(at..at + 4).map(BigEndian::read_u32);
        Some(Self {
            ag: g(4)?,
            agbno: g(8)?,
            count: g(12)?,
            isize: g(16)?,
            length: g(20)?,
            generation: g(24)?,
        })
    }
}

/// Intent/done pairing: (is_intent, family name, id) of an intent or done item.
pub fn intent_id(t: u16, r: &[u8], n: Native) -> Option<(bool, &'static str, u64)> {
    let (intent, fam) = intent_family(t)?;
    Some((intent, fam, n.u64(r, 8)?))
}

/// (is_intent, family name) of an intent or done item type; None for other items.
pub fn intent_family(t: u16) -> Option<(bool, &'static str)> {
    let fam = match t {
        LI_EFI | LI_EFD => "EFI",
        LI_EFI_RT | LI_EFD_RT => "EFI_RT",
        LI_RUI | LI_RUD => "RUI",
        LI_RUI_RT | LI_RUD_RT => "RUI_RT",
        LI_CUI | LI_CUD => "CUI",
        LI_CUI_RT | LI_CUD_RT => "CUI_RT",
        LI_BUI | LI_BUD => "BUI",
        LI_ATTRI | LI_ATTRD => "ATTRI",
        LI_XMI | LI_XMD => "XMI",
        _ => return None,
    };
    let intent = matches!(
        t,
        LI_EFI | LI_EFI_RT | LI_RUI | LI_RUI_RT | LI_CUI | LI_CUI_RT | LI_BUI | LI_ATTRI | LI_XMI
    );
    Some((intent, fam))
}

/// Extents of an EFI/EFD region (12-byte packed or 16-byte records).
fn ef_extents(r: &[u8], n: Native) -> Value {
    let count = n.u32(r, 4).unwrap_or(0) as usize;
    if count == 0 {
        return json!([]);
    }
    let rec = if r.len() >= 16 + 16 * count { 16 } else { 12 };
    let v: Vec<Value> = (0..count.min(4096))
        .filter_map(|i| {
            let at = 16 + rec * i;
            Some(json!({"start": n.u64(r, at)?, "len": n.u32(r, at + 8)?}))
        })
        .collect();
    json!(v)
}

/// xfs_map_extent records (RUI/BUI).
fn map_extents(r: &[u8], n: Native) -> Value {
    let count = n.u32(r, 4).unwrap_or(0) as usize;
    let v: Vec<Value> = (0..count.min(4096))
        .filter_map(|i| {
            let at = 16 + 32 * i;
            Some(json!({
                "owner": n.u64(r, at)?, "startblock": n.u64(r, at + 8)?,
                "startoff": n.u64(r, at + 16)?, "len": n.u32(r, at + 24)?, "flags": n.u32(r, at + 28)?,
            }))
        })
        .collect();
    json!(v)
}

/// A JSON description of one item.
pub fn describe(it: &Item, n: Native, src: &dyn BlockSource) -> Value {
    let Some(r0) = it.regions.first() else { return json!({"type": "EMPTY"}) };
    let t = n.u16(&r0.head(src, 2), 0).unwrap_or(0);
    let mut v = json!({
        "type": type_name(t),
        "type_code": format!("{t:#x}"),
        "regions": it.regions.len(),
        "bytes": it.regions.iter().map(|r| r.len()).sum::<usize>(),
    });
    if let (Some(Value::Object(m)), Value::Object(o)) = (describe_fields(it, n, src), &mut v) {
        o.extend(m);
    }
    v
}

/// The item's type name and its decoded fields (what [`describe`] adds to type, type code,
/// regions and bytes): None for an item without regions or fields. The listing's text form
/// prints these without building the whole description.
pub fn describe_fields(it: &Item, n: Native, src: &dyn BlockSource) -> Option<Value> {
    let r0 = &it.regions.first()?.bytes(src);
    let t = n.u16(r0, 0).unwrap_or(0);
    match t {
        LI_BUF | LI_INODE => common_fields(it, n, src).map(|f| serde_json::to_value(f).unwrap_or(Value::Null)),
        LI_ICREATE => Icreate::parse(r0).map(|c| {
            json!({"agno": c.ag, "agbno": c.agbno, "count": c.count, "isize": c.isize, "length": c.length, "gen": c.generation})
        }),
        LI_EFI | LI_EFD | LI_EFI_RT | LI_EFD_RT => {
            Some(json!({"id": n.u64(r0, 8).map(|x| format!("{x:#x}")), "extents": ef_extents(r0, n)}))
        }
        LI_RUI | LI_BUI | LI_RUI_RT => {
            Some(json!({"id": n.u64(r0, 8).map(|x| format!("{x:#x}")), "extents": map_extents(r0, n)}))
        }
        LI_CUI | LI_CUI_RT => {
            let count = n.u32(r0, 4).unwrap_or(0) as usize;
            let ex: Vec<Value> = (0..count.min(4096))
                .filter_map(|i| {
                    let at = 16 + 16 * i;
                    Some(json!({"startblock": n.u64(r0, at)?, "len": n.u32(r0, at + 8)?, "flags": n.u32(r0, at + 12)?}))
                })
                .collect();
            Some(json!({"id": n.u64(r0, 8).map(|x| format!("{x:#x}")), "extents": ex}))
        }
        LI_RUD | LI_CUD | LI_BUD | LI_ATTRD | LI_XMD | LI_RUD_RT | LI_CUD_RT => {
            Some(json!({"intent_id": n.u64(r0, 8).map(|x| format!("{x:#x}"))}))
        }
        LI_ATTRI => Some(json!({
            "id": n.u64(r0, 8).map(|x| format!("{x:#x}")), "ino": n.u64(r0, 16), "op_flags": n.u32(r0, 24),
            "name_len": n.u32(r0, 28), "value_len": n.u32(r0, 32),
        })),
        LI_XMI => Some(json!({
            "id": n.u64(r0, 8).map(|x| format!("{x:#x}")), "inode1": n.u64(r0, 16), "inode2": n.u64(r0, 24),
        })),
        LI_DQUOT => Some(json!({
            "id": n.u32(r0, 4), "blkno": n.u64(r0, 8), "len": n.u32(r0, 16), "boffset": n.u32(r0, 20),
        })),
        LI_QUOTAOFF => Some(json!({"flags": n.u64(r0, 8).map(|x| format!("{x:#x}"))})),
        _ => None,
    }
}

/// The decoded fields of a buffer item. Fields in alphabetical order: serialized directly they
/// print as the sorted JSON object of [`describe_fields`].
#[derive(Serialize)]
pub struct BufFields {
    blf_type: u16,
    blkno: u64,
    cancel: bool,
    dirty_chunks: usize,
    flags: String,
    inode_buf: bool,
    len: u16,
    magic: Option<String>,
}

/// The decoded fields of an inode item, in alphabetical order (see [`BufFields`]).
#[derive(Serialize)]
pub struct InodeFields {
    asize: u16,
    blkno: u64,
    boffset: u32,
    dsize: u16,
    fields: String,
    format: Option<u8>,
    ino: u64,
    len: u32,
    mode: Option<String>,
    nextents: Option<u32>,
    size: Option<u64>,
}

/// The fields of the two most common items, decoded without building a JSON tree.
#[derive(Serialize)]
#[serde(untagged)]
pub enum CommonFields {
    /// A buffer item.
    Buf(BufFields),
    /// An inode item.
    Inode(InodeFields),
}

/// The fields of a buffer or inode item (None for other items, or when they do not parse).
pub fn common_fields(it: &Item, n: Native, src: &dyn BlockSource) -> Option<CommonFields> {
    let r0 = &it.regions.first()?.bytes(src);
    match n.u16(r0, 0).unwrap_or(0) {
        LI_BUF => BufFormat::parse(r0, n).map(|b| {
            CommonFields::Buf(BufFields {
                blkno: b.blkno,
                len: b.len,
                flags: format!("{:#x}", b.flags),
                cancel: b.flags & BLF_CANCEL != 0,
                inode_buf: b.flags & BLF_INODE_BUF != 0,
                blf_type: b.blft(),
                dirty_chunks: b.runs().iter().map(|r| r.1).sum::<usize>(),
                magic: it
                    .regions
                    .get(1)
                    .and_then(|d| d.head(src, 4).get(..4).map(BigEndian::read_u32))
                    .map(|m| format!("{m:#010x}")),
            })
        }),
        LI_INODE => InodeFormat::parse(r0, n).map(|f| {
            let core = it.regions.get(1).map(|c| c.head(src, 80));
            let core = core.as_deref();
            CommonFields::Inode(InodeFields {
                ino: f.ino,
                fields: format!("{:#x}", f.fields),
                dsize: f.dsize,
                asize: f.asize,
                blkno: f.blkno,
                len: f.len,
                boffset: f.boffset,
                mode: core.and_then(|c| n.u16(c, 2)).map(|m| format!("{m:o}")),
                size: core.and_then(|c| n.u64(c, 56)),
                nextents: core.and_then(|c| n.u32(c, 76)),
                format: core.and_then(|c| c.get(5)).copied(),
            })
        }),
        _ => None,
    }
}

/// An item serialized as [`describe`]'s object (keys in its sorted order), without building
/// it: buffer and inode items field by field, the others through [`describe`].
pub struct ItemJson<'a> {
    it: &'a Item,
    n: Native,
    src: &'a dyn BlockSource,
}

impl<'a> ItemJson<'a> {
    /// The item `it` of a transaction written in byte order `n`, its regions in `src`.
    pub fn new(it: &'a Item, n: Native, src: &'a dyn BlockSource) -> Self {
        Self { it, n, src }
    }
}

impl Serialize for ItemJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (it, n, src) = (self.it, self.n, self.src);
        let Some(r0) = it.regions.first() else { return describe(it, n, src).serialize(s) };
        let t = n.u16(&r0.head(src, 2), 0).unwrap_or(0);
        let fields = match t {
            LI_BUF | LI_INODE => common_fields(it, n, src),
            _ => None,
        };
        let Some(f) = fields else { return describe(it, n, src).serialize(s) };
        let bytes = it.regions.iter().map(|r| r.len()).sum::<usize>();
        let (ty, code, regions) = (type_name(t), format!("{t:#x}"), it.regions.len());
        let mut m = s.serialize_map(None)?;
        match f {
            CommonFields::Buf(b) => {
                m.serialize_entry("blf_type", &b.blf_type)?;
                m.serialize_entry("blkno", &b.blkno)?;
                m.serialize_entry("bytes", &bytes)?;
                m.serialize_entry("cancel", &b.cancel)?;
                m.serialize_entry("dirty_chunks", &b.dirty_chunks)?;
                m.serialize_entry("flags", &b.flags)?;
                m.serialize_entry("inode_buf", &b.inode_buf)?;
                m.serialize_entry("len", &b.len)?;
                m.serialize_entry("magic", &b.magic)?;
                m.serialize_entry("regions", &regions)?;
            }
            CommonFields::Inode(i) => {
                m.serialize_entry("asize", &i.asize)?;
                m.serialize_entry("blkno", &i.blkno)?;
                m.serialize_entry("boffset", &i.boffset)?;
                m.serialize_entry("bytes", &bytes)?;
                m.serialize_entry("dsize", &i.dsize)?;
                m.serialize_entry("fields", &i.fields)?;
                m.serialize_entry("format", &i.format)?;
                m.serialize_entry("ino", &i.ino)?;
                m.serialize_entry("len", &i.len)?;
                m.serialize_entry("mode", &i.mode)?;
                m.serialize_entry("nextents", &i.nextents)?;
                m.serialize_entry("regions", &regions)?;
                m.serialize_entry("size", &i.size)?;
            }
        }
        m.serialize_entry("type", ty)?;
        m.serialize_entry("type_code", &code)?;
        m.end()
    }
}

/// The type name of an item with regions (from its first region's type code).
pub fn item_type_name(it: &Item, n: Native, src: &dyn BlockSource) -> Option<&'static str> {
    Some(type_name(n.u16(&it.regions.first()?.head(src, 2), 0).unwrap_or(0)))
}

/// The fields of a buffer or inode item that a listing line shows, decoded from the first
/// bytes of its regions only, as numbers: no string or JSON tree is built.
pub enum ItemSummary {
    /// A buffer item (`xfs_buf_log_format`, and the magic of the logged buffer).
    Buf {
        /// Buffer type (`blf_flags >> XFS_BLFT_SHIFT`).
        blf_type: u16,
        /// Disk address (512-byte units).
        blkno: u64,
        /// `XFS_BLF_CANCEL`.
        cancel: bool,
        /// 128-byte chunks logged (bits set in the dirty map).
        dirty_chunks: u32,
        /// `blf_flags`.
        flags: u16,
        /// `XFS_BLF_INODE_BUF`.
        inode_buf: bool,
        /// Length (512-byte units).
        len: u16,
        /// The first 4 bytes of the logged buffer, big-endian.
        magic: Option<u32>,
    },
    /// An inode item (`xfs_inode_log_format`, and the logged inode core).
    Inode {
        /// Attribute fork bytes logged.
        asize: u16,
        /// Cluster buffer daddr.
        blkno: u64,
        /// Offset of the inode in the buffer.
        boffset: u32,
        /// Data fork bytes logged.
        dsize: u16,
        /// `ilf_fields`.
        fields: u32,
        /// `di_format` of the logged core.
        format: Option<u8>,
        /// Inode number.
        ino: u64,
        /// Cluster buffer length.
        len: u32,
        /// `di_mode` of the logged core.
        mode: Option<u16>,
        /// `di_nextents` of the logged core.
        nextents: Option<u32>,
        /// `di_size` of the logged core.
        size: Option<u64>,
    },
}

/// The [`ItemSummary`] of a buffer or inode item; None for other items, or when region 0 does
/// not parse.
pub fn summary(it: &Item, n: Native, src: &dyn BlockSource) -> Option<ItemSummary> {
    let r0 = it.regions.first()?.head(src, 20 + 4 * 16);
    let r0 = &r0[..];
    match n.u16(r0, 0).unwrap_or(0) {
        LI_BUF => {
            let (flags, len, blkno, map_size) = (n.u16(r0, 4)?, n.u16(r0, 6)?, n.u64(r0, 8)?, n.u32(r0, 16)?);
            let words = (map_size as usize).min(r0.len().saturating_sub(20) / 4).min(16);
            let dirty_chunks = (0..words).filter_map(|i| n.u32(r0, 20 + 4 * i)).map(u32::count_ones).sum();
            Some(ItemSummary::Buf {
                blf_type: flags >> 11,
                blkno,
                cancel: flags & BLF_CANCEL != 0,
                dirty_chunks,
                flags,
                inode_buf: flags & BLF_INODE_BUF != 0,
                len,
                magic: it.regions.get(1).and_then(|d| d.head(src, 4).get(..4).map(BigEndian::read_u32)),
            })
        }
        LI_INODE => {
            let f = InodeFormat::parse(r0, n)?;
            let core = it.regions.get(1).map(|c| c.head(src, 80));
            let core = core.as_deref();
            Some(ItemSummary::Inode {
                asize: f.asize,
                blkno: f.blkno,
                boffset: f.boffset,
                dsize: f.dsize,
                fields: f.fields,
                format: core.and_then(|c| c.get(5)).copied(),
                ino: f.ino,
                len: f.len,
                mode: core.and_then(|c| n.u16(c, 2)),
                nextents: core.and_then(|c| n.u32(c, 76)),
                size: core.and_then(|c| n.u64(c, 56)),
            })
        }
        _ => None,
    }
}
