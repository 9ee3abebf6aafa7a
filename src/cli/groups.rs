//! `daxray groups IMAGE [GROUP...]`: ext4 group descriptors field by field.

use super::{Global, output};
use crate::ext4::groupview::{GroupView, group_views};
use crate::open::open;
use std::path::PathBuf;

/// Arguments of `groups`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image file or block device (ext4).
    pub image: PathBuf,
    /// Groups to show (default: all).
    #[arg(value_name = "GROUP")]
    pub groups: Vec<u64>,
}

/// One group as text: a heading, then `field = value` lines.
fn text(v: &GroupView) -> String {
    let check = match v.checksum_ok {
        Some(true) => " (correct)",
        Some(false) => " (bad)",
        None => "",
    };
    format!(
        "Group {}: blocks {}-{}, descriptor at block {} (byte {})\n  bg_block_bitmap = {}\n  bg_inode_bitmap = {}\n  bg_inode_table = {} (through {})\n  bg_free_blocks_count = {}\n  bg_free_inodes_count = {}\n  bg_used_dirs_count = {}\n  bg_flags = {:#x} [{}]\n  bg_exclude_bitmap = {}\n  bg_block_bitmap_csum = {:#x}\n  bg_inode_bitmap_csum = {:#x}\n  bg_itable_unused = {}\n  bg_checksum = {:#x}{check}\n",
        v.group,
        v.first_block,
        v.last_block,
        v.desc_block,
        v.desc_offset,
        v.block_bitmap,
        v.inode_bitmap,
        v.inode_table,
        v.inode_table_last,
        v.free_blocks_count,
        v.free_inodes_count,
        v.used_dirs_count,
        v.flags,
        v.flag_names.join(", "),
        v.exclude_bitmap,
        v.block_bitmap_csum,
        v.inode_bitmap_csum,
        v.itable_unused,
        v.checksum,
    )
}

/// Run `groups`.
pub fn run(a: &Args, g: &Global) -> crate::Result<i32> {
    let o = open(&a.image, &g.open_options())?;
    if o.fs.kind() != crate::FsKind::Ext4 {
        return Err(crate::Error::Usage(format!(
            "groups shows ext4 group descriptors; this is {} (see `daxray ag`)",
            o.fs.kind()
        )));
    }
    let sb = crate::ext4::Superblock::read(o.fs.source())?;
    let mut views = group_views(o.fs.source(), &sb)?;
    if let Some(bad) = a.groups.iter().find(|n| **n >= sb.groups_count) {
        return Err(crate::Error::Usage(format!(
            "group {bad}: the file system has groups 0..{}",
            sb.groups_count
        )));
    }
    if !a.groups.is_empty() {
        views.retain(|v| a.groups.contains(&v.group));
    }
    let findings = o.findings();
    if g.json {
        output::print_json(&serde_json::json!({ "groups": views, "findings": findings }))?;
    } else {
        let s: String = views.iter().map(text).collect();
        output::write_stdout(s.as_bytes())?;
        output::print_findings(&findings);
    }
    Ok(output::exit_code(&findings))
}
