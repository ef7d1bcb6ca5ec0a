//! On-disk structures of ext4 (Documentation/filesystems/ext4 in the kernel), as the
//! writer fills them and the reader parses them. All fields are little-endian.

pub const BLOCK: usize = 4096;
pub const BLOCK_U64: u64 = BLOCK as u64;
pub const BLOCKS_PER_GROUP: u64 = 32768;
pub const INODE_SIZE: usize = 256;
pub const INODES_PER_BLOCK: u32 = (BLOCK / INODE_SIZE) as u32;
pub const GOOD_OLD_INODE_SIZE: usize = 128;
pub const EXTRA_ISIZE: u16 = 32;
pub const DESC_SIZE: usize = 32;
pub const SUPER_MAGIC: u16 = 0xEF53;
pub const ROOT_INO: u32 = 2;
pub const LOST_FOUND_INO: u32 = 11;
pub const FIRST_INO: u32 = 11;

pub const COMPAT_EXT_ATTR: u32 = 0x0008;
pub const COMPAT_DIR_INDEX: u32 = 0x0020;
pub const INCOMPAT_FILETYPE: u32 = 0x0002;
pub const INCOMPAT_EXTENTS: u32 = 0x0040;
pub const RO_COMPAT_SPARSE_SUPER: u32 = 0x0001;
pub const RO_COMPAT_LARGE_FILE: u32 = 0x0002;
pub const RO_COMPAT_HUGE_FILE: u32 = 0x0008;
pub const RO_COMPAT_DIR_NLINK: u32 = 0x0020;
pub const RO_COMPAT_EXTRA_ISIZE: u32 = 0x0040;

pub const S_IFIFO: u16 = 0x1000;
pub const S_IFCHR: u16 = 0x2000;
pub const S_IFDIR: u16 = 0x4000;
pub const S_IFBLK: u16 = 0x6000;
pub const S_IFREG: u16 = 0x8000;
pub const S_IFLNK: u16 = 0xA000;
pub const S_IFSOCK: u16 = 0xC000;
pub const S_IFMT: u16 = 0xF000;

pub const EXTENTS_FL: u32 = 0x0008_0000;
pub const INLINE_DATA_FL: u32 = 0x1000_0000;
pub const EXT_MAGIC: u16 = 0xF30A;
/// Longest initialized extent.
pub const EXT_MAX_LEN: u64 = 32768;
/// Entries in an extent block: (4096 - 12-byte header) / 12.
pub const EXT_PER_BLOCK: usize = (BLOCK - 12) / 12;
pub const EXT_IN_INODE: usize = 4;
pub const LINK_MAX: u32 = 65000;

pub const FT_REG: u8 = 1;
pub const FT_DIR: u8 = 2;
pub const FT_CHR: u8 = 3;
pub const FT_BLK: u8 = 4;
pub const FT_FIFO: u8 = 5;
pub const FT_SYMLINK: u8 = 7;

pub fn put16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

pub fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// Bounds-checked little-endian reads for the reader: `None` past the end.
pub fn get16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off.checked_add(2)?)?.try_into().ok()?))
}

pub fn get32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off.checked_add(4)?)?.try_into().ok()?))
}

/// Whether group `g` holds a backup of the superblock and descriptors (sparse_super:
/// groups 0, 1 and powers of 3, 5 and 7).
pub fn has_super(g: u64) -> bool {
    fn power_of(mut n: u64, base: u64) -> bool {
        while n > 1 && n.is_multiple_of(base) {
            n /= base;
        }
        n == 1
    }
    g <= 1 || power_of(g, 3) || power_of(g, 5) || power_of(g, 7)
}

/// A leaf extent: `len` blocks from logical block `logical` at physical block `start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    pub logical: u32,
    pub len: u16,
    pub start: u64,
}

/// Writes an extent header followed by `entries` 12-byte entries.
pub fn extent_node(buf: &mut [u8], max: u16, depth: u16, entries: &[[u8; 12]]) {
    put16(buf, 0, EXT_MAGIC);
    put16(buf, 2, entries.len() as u16);
    put16(buf, 4, max);
    put16(buf, 6, depth);
    put32(buf, 8, 0);
    for (i, e) in entries.iter().enumerate() {
        buf[12 + 12 * i..24 + 12 * i].copy_from_slice(e);
    }
}

pub fn leaf_entry(e: &Extent) -> [u8; 12] {
    let mut b = [0u8; 12];
    put32(&mut b, 0, e.logical);
    put16(&mut b, 4, e.len);
    put16(&mut b, 6, (e.start >> 32) as u16);
    put32(&mut b, 8, e.start as u32);
    b
}

pub fn index_entry(logical: u32, block: u64) -> [u8; 12] {
    let mut b = [0u8; 12];
    put32(&mut b, 0, logical);
    put32(&mut b, 4, block as u32);
    put16(&mut b, 8, (block >> 32) as u16);
    b
}

/// Length of a directory entry holding a name of `name_len` bytes.
pub fn dirent_len(name_len: usize) -> usize {
    (8 + name_len + 3) & !3
}

/// Writes a directory entry at `off` spanning `rec_len` bytes.
pub fn put_dirent(block: &mut [u8], off: usize, ino: u32, rec_len: usize, ftype: u8, name: &[u8]) {
    put32(block, off, ino);
    put16(block, off + 4, rec_len as u16);
    block[off + 6] = name.len() as u8;
    block[off + 7] = ftype;
    block[off + 8..off + 8 + name.len()].copy_from_slice(name);
}

/// Linux's device number encodings in `i_block`: the old 16-bit one when both numbers
/// fit a byte, else the new 32-bit one in the second word.
pub fn encode_dev(major: u32, minor: u32) -> (u32, u32) {
    if major < 256 && minor < 256 {
        ((major << 8) | minor, 0)
    } else {
        (0, (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12))
    }
}

/// Inverse of [`encode_dev`].
pub fn decode_dev(w0: u32, w1: u32) -> (u32, u32) {
    if w0 != 0 {
        ((w0 >> 8) & 0xff, w0 & 0xff)
    } else {
        ((w1 & 0xfff00) >> 8, (w1 & 0xff) | ((w1 >> 12) & 0xfff00))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_groups_are_0_1_and_powers_of_3_5_7() {
        let v: Vec<u64> = (0..100).filter(|g| has_super(*g)).collect();
        assert_eq!(v, [0, 1, 3, 5, 7, 9, 25, 27, 49, 81]);
    }

    #[test]
    fn device_numbers_round_trip_in_both_encodings() {
        assert_eq!(encode_dev(1, 3), (0x0103, 0));
        for (ma, mi) in [(1, 3), (8, 0), (259, 1), (4095, 1_048_575), (254, 300)] {
            let (a, b) = encode_dev(ma, mi);
            assert_eq!(decode_dev(a, b), (ma, mi));
        }
    }
}
