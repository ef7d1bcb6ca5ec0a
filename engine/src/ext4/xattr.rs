//! Extended attributes: in the inode's spare space (after `i_extra_isize`) when they fit,
//! otherwise in one xattr block shared by every inode with the same set.

use std::collections::BTreeMap;

use super::disk::{get16, get32, put16, put32, BLOCK, EXTRA_ISIZE, GOOD_OLD_INODE_SIZE, INODE_SIZE};

pub const MAGIC: u32 = 0xEA02_0000;
const BLOCK_HEADER: usize = 32;
/// Bytes after the in-inode header magic: 256 - 128 - 32 - 4.
pub const IN_INODE_SPACE: usize = INODE_SIZE - GOOD_OLD_INODE_SIZE - EXTRA_ISIZE as usize - 4;

/// Name prefixes and their index (`fs/ext4/xattr.h`); the longest match wins.
const PREFIXES: [(&str, u8); 4] = [("user.", 1), ("trusted.", 4), ("security.", 6), ("system.", 7)];

/// Splits a full name into its index and the stored suffix; `None` for namespaces ext4
/// cannot hold verbatim (POSIX ACLs are stored in a different format, so they are refused).
pub fn split_name(name: &str) -> Option<(u8, &[u8])> {
    if name.starts_with("system.posix_acl_") {
        return None;
    }
    PREFIXES.iter().find_map(|(p, i)| name.strip_prefix(p).map(|rest| (*i, rest.as_bytes())))
}

/// The full name from an index and suffix (inverse of [`split_name`]).
pub fn full_name(index: u8, suffix: &[u8]) -> Option<String> {
    let prefix = match index {
        1 => "user.",
        2 => "system.posix_acl_access",
        3 => "system.posix_acl_default",
        4 => "trusted.",
        6 => "security.",
        7 => "system.",
        _ => return None,
    };
    Some(format!("{prefix}{}", String::from_utf8_lossy(suffix)))
}

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// The e2fsprogs/kernel entry hash: name bytes as signed chars, then value words.
fn entry_hash(suffix: &[u8], value: &[u8]) -> u32 {
    let mut h: u32 = 0;
    for &c in suffix {
        h = (h << 5) ^ (h >> 27) ^ (c as i8 as i32 as u32);
    }
    let mut padded = value.to_vec();
    padded.resize(pad4(value.len()), 0);
    for w in padded.chunks_exact(4) {
        h = (h << 16) ^ (h >> 16) ^ u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
    }
    h
}

/// The attributes as (index, suffix, value), sorted as the kernel keeps them in a block.
struct Item<'a> {
    index: u8,
    suffix: &'a [u8],
    value: &'a [u8],
}

fn items(xattrs: &BTreeMap<String, Vec<u8>>) -> Result<Vec<Item<'_>>, String> {
    let mut v = Vec::new();
    for (name, value) in xattrs {
        let (index, suffix) = split_name(name).ok_or_else(|| format!("xattr `{name}` cannot be stored in ext4"))?;
        if suffix.len() > 255 {
            return Err(format!("xattr name `{name}` is longer than 255 bytes"));
        }
        v.push(Item { index, suffix, value });
    }
    v.sort_by(|a, b| (a.index, a.suffix.len(), a.suffix).cmp(&(b.index, b.suffix.len(), b.suffix)));
    Ok(v)
}

fn space(items: &[Item<'_>]) -> usize {
    items.iter().map(|i| pad4(16 + i.suffix.len()) + pad4(i.value.len())).sum::<usize>() + 4
}

/// Where a set of xattrs goes.
pub enum Placement {
    None,
    /// The 96 bytes after `i_extra_isize`: magic, entries, values.
    InInode(Vec<u8>),
    /// A whole xattr block (refcount filled in when written).
    Block(Vec<u8>),
}

/// Encodes a set of xattrs for one inode.
pub fn encode(xattrs: &BTreeMap<String, Vec<u8>>) -> Result<Placement, String> {
    if xattrs.is_empty() {
        return Ok(Placement::None);
    }
    let items = items(xattrs)?;
    let need = space(&items);
    if need <= IN_INODE_SPACE {
        let mut region = vec![0u8; 4 + IN_INODE_SPACE];
        put32(&mut region, 0, MAGIC);
        fill(&mut region[4..], 0, &items);
        return Ok(Placement::InInode(region));
    }
    if need + BLOCK_HEADER > BLOCK {
        return Err(format!("the xattrs take {need} bytes, more than one 4096-byte block"));
    }
    let mut block = vec![0u8; BLOCK];
    put32(&mut block, 0, MAGIC);
    put32(&mut block, 4, 1);
    put32(&mut block, 8, 1);
    let hashes = fill(&mut block, BLOCK_HEADER, &items);
    let mut h: u32 = 0;
    for e in hashes {
        h = (h << 16) ^ (h >> 16) ^ e;
    }
    put32(&mut block, 12, h);
    Ok(Placement::Block(block))
}

/// Writes entries from `first` and values from the end of `area` down; value offsets are
/// relative to the start of `area`. Returns the entry hashes.
fn fill(area: &mut [u8], first: usize, items: &[Item<'_>]) -> Vec<u32> {
    let (mut at, mut end) = (first, area.len());
    let mut hashes = Vec::new();
    for it in items {
        end -= pad4(it.value.len());
        area[end..end + it.value.len()].copy_from_slice(it.value);
        let hash = entry_hash(it.suffix, it.value);
        area[at] = it.suffix.len() as u8;
        area[at + 1] = it.index;
        put16(area, at + 2, if it.value.is_empty() { 0 } else { end as u16 });
        put32(area, at + 4, 0);
        put32(area, at + 8, it.value.len() as u32);
        put32(area, at + 12, hash);
        area[at + 16..at + 16 + it.suffix.len()].copy_from_slice(it.suffix);
        at += pad4(16 + it.suffix.len());
        hashes.push(hash);
    }
    hashes
}

/// Sets the reference count of an encoded xattr block.
pub fn set_refcount(block: &mut [u8], n: u32) {
    put32(block, 4, n);
}

/// Parses entries from `area` (in-inode region after the magic with `first` = 0, or a
/// block with `first` = 32). Bounds-checked: bad input gives `Err`, never a panic.
pub fn parse(area: &[u8], first: usize) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut out = BTreeMap::new();
    let mut at = first;
    for _ in 0..area.len() / 16 + 1 {
        let word = get32(area, at).ok_or("xattr entries run past their area")?;
        if word == 0 {
            return Ok(out);
        }
        let name_len = area[at] as usize;
        let index = area[at + 1];
        let offs = get16(area, at + 2).ok_or("truncated xattr entry")? as usize;
        let inum = get32(area, at + 4).ok_or("truncated xattr entry")?;
        let size = get32(area, at + 8).ok_or("truncated xattr entry")? as usize;
        if inum != 0 {
            return Err("xattr values in inodes (ea_inode) are not supported".into());
        }
        let suffix = area.get(at + 16..at + 16 + name_len).ok_or("xattr name runs past its area")?;
        let value = area.get(offs..offs.checked_add(size).ok_or("xattr value size overflows")?);
        let value = value.ok_or("xattr value runs past its area")?;
        let name = full_name(index, suffix).ok_or_else(|| format!("unknown xattr name index {index}"))?;
        out.insert(name, value.to_vec());
        at += pad4(16 + name_len);
    }
    Err("xattr entries do not end".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capability_fits_in_the_inode_and_parses_back() {
        let cap = crate::fstree::capability_xattr("cap_net_raw+ep").unwrap();
        let x = BTreeMap::from([("security.capability".to_owned(), cap.clone())]);
        let Placement::InInode(region) = encode(&x).unwrap() else { panic!("not in inode") };
        assert_eq!(&region[..4], &MAGIC.to_le_bytes());
        assert_eq!(region[4], 10); // name_len of "capability"
        assert_eq!(region[5], 6); // security index
        assert_eq!(parse(&region[4..], 0).unwrap(), x);
    }

    #[test]
    fn big_sets_go_to_a_block_with_its_hash() {
        let x = BTreeMap::from([("user.big".to_owned(), vec![7u8; 300]), ("user.a".to_owned(), b"1".to_vec())]);
        let Placement::Block(b) = encode(&x).unwrap() else { panic!("not a block") };
        assert_eq!(get32(&b, 0), Some(MAGIC));
        assert_ne!(get32(&b, 12), Some(0));
        assert_eq!(parse(&b, 32).unwrap(), x);
        assert!(encode(&BTreeMap::from([("user.x".to_owned(), vec![0; 5000])])).is_err());
        assert!(encode(&BTreeMap::from([("system.posix_acl_access".to_owned(), vec![2])])).is_err());
    }
}
